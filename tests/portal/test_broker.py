"""The embedded broker writes a message under a name no reader takes, then renames it into place."""
import os

import pytest
from kombu import Connection


@pytest.fixture
def channel(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(tmp_path / "control"), "store_processed": False}
    with Connection("filesystem://", transport="portal.broker:Transport", transport_options=options) as conn:
        yield conn.default_channel, folder


def test_a_reader_never_sees_a_message_before_it_is_complete(channel, monkeypatch):
    chan, folder = channel
    seen_during_write = []
    real_open = open

    class Spy:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            # What a polling worker would find right now: no complete-looking message may exist yet.
            seen_during_write.extend(name for name in os.listdir(folder) if name.partition(".")[2] == "q.msg")
            return self.handle.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

    monkeypatch.setattr("builtins.open", lambda *a, **k: Spy(real_open(*a, **k)))
    chan._put("q", {"body": "x" * 1000})
    monkeypatch.setattr("builtins.open", real_open)
    assert seen_during_write == []
    assert chan._get("q") == {"body": "x" * 1000}
    assert os.listdir(folder) == []
