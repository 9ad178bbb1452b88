"""A byte stream → its complete lines, memory bounded however long a line runs. Pure.

The Spaces Firehose reply (``spaces_firehose``) is NDJSON that arrives in chunks cut
anywhere: a line may span chunks, and a stream without newlines must not grow memory.
The complete lines wait in a ``Backlog`` until the consumer applies them, a slice per
IOLoop turn.
"""

from __future__ import annotations

from io import BytesIO

NEWLINE = ord("\n")
MAX_LINE_BYTES = 1 << 20  # a location update is ~2 KB; a 1 MiB "line" is garbage


class LineSplitter:
    """Bytes of a stream → complete lines, each with its newline; a partial line waits for it.

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
        """The lines that chunk completes, each with its newline, in order."""
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        # BytesIO finds each newline with memchr: 0.2 us a ~1.1 KB Firehose line, against
        # 0.55 us for bytes.split(b"\n"), which compares byte by byte. A line keeps its
        # newline: JSON allows it, and cutting it off would copy the line again.
        lines = BytesIO(chunk).readlines()
        tail = lines.pop() if chunk[-1] != NEWLINE else b""
        if self._dropping:
            self._dropping = False
            del lines[0]
        elif self._parts:
            self._parts.append(lines[0])
            first = b"".join(self._parts)
            self._parts, self._size = [], 0
            if len(first) > self.max_line_bytes + 1:
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


_COMPACT_AFTER = 4096  # lines taken before the taken ones are dropped from the list


class Backlog:
    """Complete lines waiting to be applied, oldest first, and their size in bytes."""

    def __init__(self) -> None:
        self.bytes = 0  # the lines' bytes
        self._lines: list[bytes] = []
        self._next = 0  # index of the oldest line not taken yet

    def __len__(self) -> int:
        return len(self._lines) - self._next

    def add(self, lines: list[bytes]) -> None:
        """Lines to apply after those already waiting (each with its newline)."""
        self._lines += lines
        self.bytes += sum(map(len, lines))

    def take(self, count: int) -> list[bytes]:
        """The oldest count lines (fewer if fewer wait), no longer waiting."""
        start = self._next
        lines = self._lines[start:start + count]
        self._next = start + len(lines)
        self.bytes -= sum(map(len, lines))
        if self._next == len(self._lines):
            self._lines, self._next = [], 0
        elif self._next >= _COMPACT_AFTER:  # a backlog that never empties: bounded list
            del self._lines[:self._next]
            self._next = 0
        return lines

    def clear(self) -> None:
        """Forget every waiting line."""
        self._lines, self._next, self.bytes = [], 0, 0
