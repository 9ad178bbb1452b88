"""When the Firehose consumer connects again after a connection ended. Pure.

Cisco's best practice for the Firehose: back off 1 s doubling to 60 s with full jitter,
and start over once a connection stayed up 5 minutes; a 429 waits at least 30 s, or as
long as its Retry-After asks (up to an hour); 400/401/403 mean the API key is wrong and
are retried every 5 minutes, without growing the back-off.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable

BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 60.0
HEALTHY_RESET_S = 300.0  # a connection up this long resets the back-off
RATE_LIMITED_MIN_S, RETRY_AFTER_MAX_S = 30.0, 3600.0
UNAUTHORIZED_RETRY_S = 300.0
_UNAUTHORIZED = frozenset({400, 401, 403})


class Backoff:
    """The wait before each reconnection; ``attempt`` counts failures since a healthy one."""

    def __init__(self, jitter: Callable[[], float]) -> None:
        self._jitter = jitter  # uniform in [0, 1): the "full jitter" of the window
        self.attempt = 0

    def reset(self) -> None:
        """A connection stayed up HEALTHY_RESET_S: the next failure waits the least again."""
        self.attempt = 0

    def after(self, status: int, retry_after_s: float | None) -> tuple[str, float]:
        """The state and the wait before the next connection, after one that ended.

        status: the reply's status line (599 for a transport error or a cut);
        retry_after_s: its Retry-After, in seconds from now, if it had one.
        """
        if status in _UNAUTHORIZED:
            return "unauthorized", UNAUTHORIZED_RETRY_S
        window_s = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** min(self.attempt, 16))
        self.attempt += 1
        delay_s = self._jitter() * window_s
        if status == 429:
            asked_s = min(retry_after_s or 0.0, RETRY_AFTER_MAX_S)
            delay_s = max(RATE_LIMITED_MIN_S, asked_s, delay_s)
        return "backing_off", delay_s


def retry_after_s(value: str, now_s: float) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date."""
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)
