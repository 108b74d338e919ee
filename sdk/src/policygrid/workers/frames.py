"""The frames policy processes and warm workers exchange: length-prefixed JSON, checked as hostile input."""

from __future__ import annotations

import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")
# Error types a child may claim for its call; anything else it claims becomes a policy_error.
CHILD_ERROR_TYPES = {"policy_error", "input_invalid", "output_invalid", "resource_limit", "not_found"}


class ProtocolViolation(Exception):
    pass


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        data = os.read(fd, min(left, 1 << 20))
        if not data:
            return None
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def complete(frame: bytearray) -> bool:
    return len(frame) >= 4 and len(frame) >= 4 + HEADER.unpack(frame[:4])[0]


def check_frame(frame: bytearray, max_frame: int) -> str | None:
    if len(frame) < 4:
        return "the policy's process wrote a truncated frame"
    size = HEADER.unpack(frame[:4])[0]
    if size > max_frame:
        return f"the policy's process announced a {size}-byte frame, more than allowed"
    if len(frame) < 4 + size:
        return "the policy's process wrote a truncated frame (it ended mid-frame)"
    if len(frame) > 4 + size:
        return "the policy's process wrote more than one frame"
    return None


def parse_result(body: bytes) -> tuple[bool, Any]:
    """(True, value) or (False, error dict) from a well-framed body; ProtocolViolation if it isn't our shape."""
    try:
        message = json.loads(body)
    except ValueError:
        raise ProtocolViolation("the policy's process wrote a frame that is not JSON") from None
    if not isinstance(message, dict) or len(message) != 1:
        raise ProtocolViolation("the policy's process wrote a frame of an unknown shape")
    if "ok" in message:
        return True, message["ok"]
    error = message.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        raise ProtocolViolation("the policy's process wrote an error frame of an unknown shape")
    claimed = error.get("error_type")
    if claimed not in CHILD_ERROR_TYPES:
        error = {**error, "error_type": "policy_error"}
    return False, error


def reply_head(printed: bytes, keepers: list[int], dying: list[int]) -> bytes:
    """The JSON head of a reply: the call's captured output (already encoded), the processes to keep."""
    fields = json.dumps({k: v for k, v in {"keepers": keepers, "dying": dying}.items() if v}).encode()
    if not printed:
        return b"" if fields == b"{}" else fields
    return b'{"output":' + printed + (b"}" if fields == b"{}" else b"," + fields[1:])
