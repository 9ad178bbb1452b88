"""The spill file: what a shutdown could not flush, kept on disk for the next start.

When the final flush fails (the database is down), the unflushed state is written as
absolute values (tracks, day rows, per-minute counts, zone counts, feed cursors) to
``<database.spill_dir>/tys-spill.json``: a temporary file, fsync'd, renamed over, and
the directory fsync'd, so the file is either whole or absent. The next start applies
it after loading the database (its values are newer), flushes, and only then removes
it. A file that cannot be read stops start-up: it is never silently dropped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import orjson

from tys_server.core.adaptive import JITTER_PRIOR_FT, ZIG_PRIOR
from tys_server.core.dirty import Dirty
from tys_server.core.snapshot import Unflushed
from tys_server.core.state import State
from tys_server.store.database import StoreError
from tys_server.store.flush_rows import count_rows, day_rows, zone_rows

FILE_NAME = "tys-spill.json"
FORMAT = "tys-spill"
# 2: track rows carry the adaptive filter's columns; 3: and rule D's (run, zig). Older
# files are still read: their tracks get the missing columns' defaults, as the
# database's rows do.
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # _TRACKS_OF's keys


class SpillError(StoreError):
    """The spill file is there but cannot be used: start-up stops and the file stays."""


def unflushed(state: State, keys: Dirty, cursors: dict[str, int]) -> Unflushed:
    """The values of keys as absolute rows (the flush's own row builders)."""
    tracks = [(mac, *_track_row(state, mac)) for mac in keys.tracks if mac in state.tracks]
    days = day_rows(state, [key for key in keys.days if key in state.days])
    return Unflushed(tracks, days, count_rows(state, sorted(keys.minutes)),
                     zone_rows(state, [key for key in keys.zones if key in state.zones]),
                     dict(cursors))


def _track_row(state: State, mac: str) -> tuple[Any, ...]:
    # Loaded.tracks' order: total_m first, then the rest of Track.as_row(), then
    # Track.adaptive_row().
    track = state.tracks[mac]
    *filter_state, total_m = track.as_row()
    return (total_m, *filter_state, *track.adaptive_row())


def path_in(spill_dir: str | Path) -> Path:
    """Where the spill file of that directory lives."""
    return Path(spill_dir) / FILE_NAME


def write(spill_dir: str | Path, content: Unflushed) -> Path:
    """Write content durably (blocking: run it in a thread); the file's path."""
    directory = Path(spill_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = path_in(directory)
    temporary = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    document = {"format": FORMAT, "version": VERSION, "tracks": content.tracks,
                "days": content.days, "counts": content.counts, "zones": content.zones,
                "cursors": content.cursors}
    with temporary.open("wb") as out:
        out.write(orjson.dumps(document))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    _sync_directory(directory)
    return target


def read(spill_dir: str | Path) -> Unflushed | None:
    """The spill file's content, None when there is none; SpillError when unusable."""
    target = path_in(spill_dir)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SpillError(f"cannot read the spill file {target}: {exc.strerror}") from None
    try:
        return _parse(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise SpillError(f"the spill file {target} is unusable ({exc}); it holds state the "
                         f"database lacks: check it, then move it away to start") from None


def remove(spill_dir: str | Path) -> None:
    """Delete the spill file (once its content is in the database)."""
    target = path_in(spill_dir)
    target.unlink(missing_ok=True)
    _sync_directory(target.parent)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Row shapes: each column a number (int or float), a text, or either with None allowed.
_NUMBER, _TEXT, _INT = (int, float), (str,), (int,)
_OPTIONAL = _NUMBER + (type(None),)
_TRACK_V1 = (_TEXT, _NUMBER, _INT + (type(None),), _NUMBER, _NUMBER,
             _OPTIONAL, _OPTIONAL, _NUMBER, _NUMBER, _NUMBER)
_TRACK_V2 = _TRACK_V1 + (_INT, _OPTIONAL, _OPTIONAL, _OPTIONAL, _OPTIONAL, _OPTIONAL, _NUMBER)
_TRACK = _TRACK_V2 + (_OPTIONAL, _OPTIONAL, _NUMBER, _NUMBER)
# What a version 2 track row lacks: no run, and the zig a new device starts with; a
# version 1 row also: no walk under way, no p0, no gate candidate, and the jitter a new
# device starts with.
_V2_RUN = (None, None, 0.0, ZIG_PRIOR)
_V1_ADAPTIVE = (0, None, None, None, None, None, JITTER_PRIOR_FT, *_V2_RUN)
# Each readable version: its track row's shape, and what is appended to read it as now.
_TRACKS_OF = {1: (_TRACK_V1, _V1_ADAPTIVE), 2: (_TRACK_V2, _V2_RUN), VERSION: (_TRACK, ())}
_DAY = (_TEXT, _NUMBER, _NUMBER)
_COUNT = (_NUMBER, _INT, _INT, _INT)
_ZONE = (_NUMBER, _TEXT, _INT)


def _parse(document: Any) -> Unflushed:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a TYS spill file")
    version = document.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(f"version {version!r}, expected {VERSION}")
    cursors = document.get("cursors")
    if not isinstance(cursors, dict) or not all(
            isinstance(ms, int) and not isinstance(ms, bool) for ms in cursors.values()):
        raise ValueError("cursors: not a map of feed to integer")
    shape, missing = _TRACKS_OF[version]
    tracks = _rows(document, "tracks", shape)
    if missing:
        tracks = [(*row, *missing) for row in tracks]
    return Unflushed(tracks, _rows(document, "days", _DAY),
                     _rows(document, "counts", _COUNT), _rows(document, "zones", _ZONE),
                     cursors)


def _rows(document: dict[str, Any], name: str, shape: tuple[tuple[type, ...], ...]) -> list[Any]:
    rows = document.get(name)
    if not isinstance(rows, list):
        raise ValueError(f"{name}: not a list")
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(shape) or not all(
                isinstance(value, kinds) and not isinstance(value, bool)
                and not (isinstance(value, float) and not math.isfinite(value))
                for value, kinds in zip(row, shape, strict=True)):
            raise ValueError(f"{name} row {number} is malformed")
    return [tuple(row) for row in rows]
