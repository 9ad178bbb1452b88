"""A byte stream → its complete lines, memory bounded however long a line runs. Pure.

The Spaces Firehose reply (``spaces_firehose``) is NDJSON that arrives in chunks cut
anywhere: a line may span chunks, and a stream without newlines must not grow memory.
"""

from __future__ import annotations

MAX_LINE_BYTES = 1 << 20  # a location update is ~2 KB; a 1 MiB "line" is garbage


class LineSplitter:
    """Bytes of a stream → complete lines; a partial line waits for its newline.

    A partial line longer than max_line_bytes is dropped, and the rest of it up to the
    next newline too, so a stream without newlines cannot grow memory: ``overlong``
    counts such lines.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self.overlong = 0
        self._parts: list[bytes] = []  # the partial line, unjoined (no quadratic copies)
        self._size = 0
        self._dropping = False  # inside an overlong line: skip to the next newline

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines that chunk completes (without their newline), in order."""
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if self._dropping:
            self._dropping = False
            del lines[0]
        elif self._parts:
            self._parts.append(lines[0])
            first = b"".join(self._parts)
            self._parts, self._size = [], 0
            if len(first) > self.max_line_bytes:
                self.overlong += 1
                del lines[0]
            else:
                lines[0] = first
        self._keep(tail)
        return lines

    def pending_bytes(self) -> int:
        """Bytes of the partial line kept so far."""
        return self._size

    def reset(self) -> bool:
        """Forget the partial line (the connection ended); True if there was one."""
        had = bool(self._size)
        self._parts, self._size, self._dropping = [], 0, False
        return had

    def _keep(self, part: bytes) -> None:
        if self._dropping or not part:
            return
        self._size += len(part)
        if self._size > self.max_line_bytes:
            self.overlong += 1
            self._parts, self._size, self._dropping = [], 0, True
        else:
            self._parts.append(part)
