"""The embedded setup's Celery broker: kombu's filesystem transport, with atomic writes and crash-safe reads.

* **Atomic writes.** kombu's own ``_put`` creates ``<name>.msg`` and then writes it, and its ``_get`` moves and
  reads any ``.msg`` file without taking the writer's lock: a worker polling at the wrong moment reads an empty
  message and dies with ``JSONDecodeError`` (seen in the embedded run). Here a message is written under a name
  no reader matches and renamed into place, so a reader only ever sees complete files.
* **A taken message survives its taker.** kombu deletes a message's file as soon as a worker reads it, and
  keeps the unacknowledged message only in that worker's memory: a SIGKILLed worker lost every task it had
  taken (issue 13). Here reading renames the file into ``claimed/<pid>.<name>`` (atomic: one reader wins), the
  acknowledgement (late: ``CELERY_TASK_ACKS_LATE``) or a requeue deletes it, and any channel that opens — the
  restarted worker's — or polls puts back the claims of processes that no longer exist. This is the
  filesystem's counterpart of Redis's visibility timeout.
"""
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

# How often a polling channel looks for claims left by dead processes.
RECOVER_EVERY = 5.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.claimed_folder = os.path.join(os.path.dirname(os.path.abspath(self.data_folder_in)), "claimed")
        # Any process may be the first to use the broker (a web server started alone sends tasks too): kombu
        # makes none of these folders but the control folder, and that one without its parents.
        for folder in (self.data_folder_in, self.data_folder_out, self.processed_folder, self.control_folder,
                       self.claimed_folder):
            os.makedirs(folder, exist_ok=True)
        self.claims: dict = {}  # delivery tag -> claimed file
        self.recovered_at = 0.0
        self.recover_dead_claims()

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

    def _get(self, queue):
        if monotonic() - self.recovered_at > RECOVER_EVERY:
            self.recover_dead_claims()
        wanted = f"{queue}.msg"
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.claimed_folder, f"{os.getpid()}.{filename}")
            try:
                os.rename(os.path.join(self.data_folder_in, filename), claimed)
            except OSError:
                continue  # another reader took it
            try:
                with open(claimed, "rb") as handle:
                    payload = loads(bytes_to_str(handle.read()))
            except (OSError, ValueError) as exc:
                raise ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            tag = payload.get("properties", {}).get("delivery_tag")
            if tag is None:
                os.remove(claimed)  # nothing can acknowledge it: behave as kombu does
            else:
                self.claims[tag] = claimed
            return payload
        raise filesystem.Empty()

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self.release(delivery_tag)

    def _restore(self, message):
        """A requeue (a lost pool process's task, or the unacknowledged ones at shutdown): a new copy, then the
        claim goes."""
        super()._restore(message)
        self.release(message.delivery_tag)

    def release(self, delivery_tag) -> None:
        claimed = self.claims.pop(delivery_tag, None)
        if claimed is not None:
            try:
                os.remove(claimed)
            except FileNotFoundError:
                pass

    def recover_dead_claims(self) -> None:
        """Put back into the queue every message claimed by a process that no longer exists."""
        self.recovered_at = monotonic()
        try:
            names = os.listdir(self.claimed_folder)
        except FileNotFoundError:
            return
        for name in names:
            owner, _, original = name.partition(".")
            if not owner.isdigit() or alive(int(owner)):
                continue
            try:
                os.rename(os.path.join(self.claimed_folder, name), os.path.join(self.data_folder_in, original))
            except OSError:
                continue  # another channel recovered it first


class Transport(filesystem.Transport):
    Channel = Channel
