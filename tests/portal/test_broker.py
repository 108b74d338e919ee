"""The embedded broker writes a message under a name no reader takes, then renames it into place."""
import os
from queue import Empty

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


def test_a_message_taken_by_a_process_that_died_goes_back_to_the_queue(channel, tmp_path):
    """kombu deleted a message's file when a worker read it: a SIGKILLed worker lost every task it had taken."""
    import multiprocessing
    import signal

    chan, folder = channel
    chan._put("q", {"body": "survivor", "properties": {"delivery_tag": "tag-1"}})
    options = dict(chan.connection.client.transport_options)

    def take_and_die():
        with Connection("filesystem://", transport="portal.broker:Transport", transport_options=options) as conn:
            assert conn.default_channel._get("q")["body"] == "survivor"
            os.kill(os.getpid(), signal.SIGKILL)  # taken, never acknowledged

    taker = multiprocessing.get_context("fork").Process(target=take_and_die)
    taker.start()
    taker.join(30)
    assert taker.exitcode == -signal.SIGKILL
    assert os.listdir(folder) == []  # not in the queue while its claim stands
    with Connection("filesystem://", transport="portal.broker:Transport", transport_options=options) as conn:
        assert conn.default_channel._get("q")["body"] == "survivor"  # a new channel puts it back


def test_an_acknowledged_message_is_gone_and_a_requeued_one_comes_back_once(channel):
    chan, folder = channel
    claimed = folder.parent / "claimed"
    chan._put("q", {"body": "done", "properties": {"delivery_tag": "tag-a"}})
    assert chan._get("q")["body"] == "done"
    assert len(os.listdir(claimed)) == 1
    chan.release("tag-a")  # what basic_ack does after kombu's own bookkeeping
    assert os.listdir(claimed) == [] and os.listdir(folder) == []
    chan.recover_dead_claims()
    with pytest.raises(Empty):
        chan._get("q")  # nothing came back


def test_the_first_process_to_use_the_broker_makes_its_folders(tmp_path):
    """A web server started alone sends tasks too: sending to a broker whose folders don't exist yet works."""
    broker = tmp_path / "state" / "broker"
    options = {"data_folder_in": str(broker / "out"), "data_folder_out": str(broker / "out"),
               "processed_folder": str(broker / "processed"), "control_folder": str(broker / "control"),
               "store_processed": False}
    with Connection("filesystem://", transport="portal.broker:Transport", transport_options=options) as conn:
        channel = conn.default_channel
        channel._put("celery", {"hello": "world"})
        assert channel._get("celery") == {"hello": "world"}
    assert all((broker / name).is_dir() for name in ("out", "processed", "control", "claimed"))
