"""The embedded setup's Celery broker: kombu's filesystem transport with atomic message writes.

kombu's own ``_put`` creates ``<name>.msg`` and then writes it, and its ``_get`` moves and reads any ``.msg``
file without taking the writer's lock: a worker polling at the wrong moment reads an empty message and dies
with ``JSONDecodeError`` (seen in the embedded run). Here a message is written under a name no reader matches
and renamed into place, so a reader only ever sees complete files.
"""
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: the reader only takes files whose name after the first dot is '<queue>.msg'.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
