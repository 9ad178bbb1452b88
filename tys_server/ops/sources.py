"""What the operator's views read of the running parts, as protocols defined once.

/healthz and the status page read the flusher's health; the status page and the
Prometheus scrape read the CMX client's hosts. Both ``web`` and ``ops`` import these.
"""

from __future__ import annotations

from typing import Any, Protocol


class HealthSource(Protocol):
    """The flusher, as /healthz and the status page see it."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details: database, last_flush_age_s, backlog)."""
        ...


class HostSource(Protocol):
    """The CMX client's hosts (lookup.cmx_api.HostState), for the status page and metrics."""

    @property
    def hosts(self) -> list[Any]:
        """One state per configured host, in the configured order."""
        ...
