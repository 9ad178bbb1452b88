"""The one "now" of a test: pass it wherever the code takes a clock, move it by hand."""

from __future__ import annotations


class Clock:
    """A clock that reads now_s, which only the test moves."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s
