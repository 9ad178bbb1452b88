"""Erasure and retention: a person's or an old device's data leaves memory and the database.

Both go through the flusher's lock (FlushGate.paused): no flush runs while the rows are
deleted and memory forgets them, and the devices leave the keys the next flush would
write again, so no flush can bring them back (DESIGN 15). A device the venue keeps
reporting afterwards is tracked anew, as a device nobody registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection

from tys_server.core.state import State, User
from tys_server.service.errors import StorageFailed, UserNotFound
from tys_server.service.ports import FlushGate, UserStore
from tys_server.store.database import StoreError

log = logging.getLogger(__name__)

DAY_S = 86_400
# Devices purged per transaction: the flush waits for one batch at most, and memory
# forgets a batch in about 12 ms of the loop (measured: 5,000 devices with 3 event days
# in 31 ms, among a million tracks).
PURGE_BATCH_DEVICES = 2_000
# Tracks looked at between two turns of the loop while candidates are picked (measured:
# 50,000 in 18 ms).
SCAN_SLICE_TRACKS = 20_000


class NoFlusher:
    """The gate of a service without a flusher (tests of the service alone)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """One erasure or purge at a time."""
        async with self._lock:
            yield

    def forget_devices(self, macs: Collection[str]) -> None:
        """Nothing to forget: no flush rewrites anything."""


class Privacy:
    """Erase a user with their devices' data; purge devices nobody registered."""

    def __init__(self, state: State, store: UserStore, flush: FlushGate,
                 clock: Callable[[], float]) -> None:
        self.state = state
        self.store = store
        self.flush = flush
        self.clock = clock

    async def erase(self, user: User) -> int:
        """Delete the user, its devices and their distance, history and track; devices erased.

        Raises UserNotFound (deleted meanwhile) or StorageFailed (nothing changed).
        """
        async with self.flush.paused():
            if not self.state.is_registered(user):
                raise UserNotFound()  # deleted while this waited for a running flush
            try:
                erased = await self.store.erase_user(user.email, tuple(user.macs))
            except StoreError as exc:
                log.warning("user not erased: %s", exc)
                raise StorageFailed() from exc
            macs = frozenset(erased)
            self.state.remove_user(user, self.clock())
            self.state.forget_devices(macs)
            self.flush.forget_devices(macs)
        log.info("user erased with %d devices (%d users)", len(macs), len(self.state.users))
        return len(macs)

    async def purge(self, older_than_days: int) -> int:
        """Purge devices without an owner whose last activity is older; devices purged.

        A device of a deleted user has no owner: it counts as unregistered. A track with
        no time (a legacy row without a point) is kept. Raises StorageFailed when the
        database refused a batch (the batches before it stay purged).
        """
        cutoff_s = self.clock() - older_than_days * DAY_S
        candidates = await self._unregistered_before(cutoff_s)
        purged = 0
        for start in range(0, len(candidates), PURGE_BATCH_DEVICES):
            # Shielded: a shutdown that cancels the purge lets the batch under way end,
            # so the database and memory never disagree about it.
            purged += await asyncio.shield(
                self._purge_batch(candidates[start:start + PURGE_BATCH_DEVICES], cutoff_s))
        if purged:
            log.info("purged %d unregistered devices inactive for %d days", purged,
                     older_than_days)
        return purged

    async def _unregistered_before(self, cutoff_s: float) -> list[str]:
        """Devices nobody owns, last seen before cutoff_s; the loop keeps serving meanwhile."""
        tracks, owners = self.state.tracks, self.state.owners
        macs = list(tracks)
        found = []
        for start in range(0, len(macs), SCAN_SLICE_TRACKS):
            for mac in macs[start:start + SCAN_SLICE_TRACKS]:
                track = tracks.get(mac)
                if track is not None and _idle(track.last_ts, cutoff_s) and mac not in owners:
                    found.append(mac)
            await asyncio.sleep(0)
        return found

    async def _purge_batch(self, candidates: list[str], cutoff_s: float) -> int:
        async with self.flush.paused():
            tracks, owners = self.state.tracks, self.state.owners
            # Seen again or registered since they were picked: kept.
            still = [mac for mac in candidates if mac not in owners
                     and (track := tracks.get(mac)) is not None
                     and _idle(track.last_ts, cutoff_s)]
            if not still:
                return 0
            try:
                purged = frozenset(await self.store.purge_devices(still))
            except StoreError as exc:
                log.warning("unregistered devices not purged: %s", exc)
                raise StorageFailed() from exc
            self.state.forget_devices(purged)
            self.flush.forget_devices(purged)
            return len(purged)


def _idle(last_ts: float | None, cutoff_s: float) -> bool:
    return last_ts is not None and last_ts < cutoff_s
