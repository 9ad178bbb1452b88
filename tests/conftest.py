"""Shared fixtures: a real PostgreSQL (embedded, or TYS_TEST_DSN), settings, the app."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import shutil
import tempfile
import time
import uuid
import warnings
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import time_machine
import tornado.httpclient
import tornado.ioloop

from tests.support.clock import Clock, room_in_day
from tests.support.pgproxy import PgProxy
from tools import pg_admin
from tools.cmx_sim.httpclient import basic_auth
from tys_server.config import Settings, load_settings
from tys_server.server import Runtime
from tys_server.store.embedded import EmbeddedPostgres

TABLES = ("devices", "users", "distance", "distance_history", "count", "zone", "feed_cursor")
CMX_AUTH = ("cmx", "change-me-cmx")
API_AUTH = ("frontend", "change-me-api")
MONITOR_AUTH = ("monitor", "change-me-monitor")

# The one controllable "now" of the whole run (docs/reliability.md, "Time-proof tests"):
# TYS_TEST_NOW (ISO-8601 in UTC, e.g. 2026-06-15T23:59:50Z) moves this process's clock
# there before any test module is imported, ticking on from it; TYS_TEST_TIMEZONE (an
# IANA name) is the event's tracking.timezone in the settings fixture.
TEST_NOW_ENV, TEST_TIMEZONE_ENV = "TYS_TEST_NOW", "TYS_TEST_TIMEZONE"
_travel = pytest.StashKey[time_machine.travel]()


def pytest_configure(config: pytest.Config) -> None:
    """Move the clock to TYS_TEST_NOW (time-machine, ticking) for the whole run."""
    text = os.environ.get(TEST_NOW_ENV)
    if not text:
        return
    try:
        now = dt.datetime.fromisoformat(text)
    except ValueError:
        raise pytest.UsageError(f"{TEST_NOW_ENV}={text!r}: not an ISO-8601 time") from None
    if now.utcoffset() != dt.timedelta(0):
        raise pytest.UsageError(f"{TEST_NOW_ENV}={text!r}: give it in UTC (a Z suffix)")
    travel = time_machine.travel(now, tick=True)
    travel.start()
    config.stash[_travel] = travel


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the clock back."""
    travel = config.stash.get(_travel, None)
    if travel is not None:
        travel.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which "now" and which event time zone the run has, when pinned."""
    pinned = [f"{name}={os.environ[name]}" for name in (TEST_NOW_ENV, TEST_TIMEZONE_ENV)
              if os.environ.get(name)]
    return "pinned: " + " ".join(pinned) if pinned else None


def test_timezone() -> str | None:
    """TYS_TEST_TIMEZONE, checked to be an IANA name (None: the shipped config's)."""
    name = os.environ.get(TEST_TIMEZONE_ENV) or None
    if name is not None:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise pytest.UsageError(f"{TEST_TIMEZONE_ENV}={name!r}: no such time zone") from None
    return name


test_timezone.__test__ = False  # type: ignore[attr-defined]


class TestDatabase:
    """One database of this test run, on the embedded server or TYS_TEST_DSN's."""

    __test__ = False

    def __init__(self, admin_dsn: str, embedded: EmbeddedPostgres | None) -> None:
        self.admin_dsn = admin_dsn
        self.embedded = embedded
        self.name = f"tys_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.dsn = pg_admin.database_dsn(admin_dsn, self.name)

    def create(self) -> None:
        """Create the run's database."""
        pg_admin.create_database(self.admin_dsn, self.name)

    def drop(self) -> None:
        """Drop it, whoever is still connected."""
        pg_admin.drop_database(self.admin_dsn, self.name)

    def query(self, sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        """Synchronous read for assertions (tests only)."""
        return pg_admin.query(self.dsn, sql, args)

    def clear(self) -> None:
        """Empty every TYS table that exists."""
        pg_admin.empty_tables(self.dsn, TABLES)


@pytest.fixture(scope="session")
def postgres() -> Iterator[TestDatabase]:
    """The run's own database; dropped at the end."""
    admin_dsn = os.environ.get("TYS_TEST_DSN")
    embedded = None
    scratch = None
    if not admin_dsn:
        # Not under pytest's tmp dirs: a concurrent pytest run prunes those.
        scratch = Path(tempfile.mkdtemp(prefix="tys-test-pg-"))
        embedded = EmbeddedPostgres(scratch / "data")
        embedded.start()
        admin_dsn = embedded.dsn("postgres")
    database = TestDatabase(admin_dsn, embedded)
    database.create()
    try:
        yield database
    finally:
        database.drop()
        if embedded is not None:
            embedded.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def db(postgres: TestDatabase) -> TestDatabase:
    """The run's database, emptied for this test."""
    postgres.clear()
    return postgres


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch directory with a short path: a Unix socket path must fit in 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="tys-") as path:  # pytest's tmp_path may not
        yield Path(path)


@pytest.fixture
def proxy(io_loop: Any, db: TestDatabase) -> Iterator[PgProxy]:
    """A cuttable TCP proxy in front of the test database (tests.support.pgproxy)."""
    pg = PgProxy(db.dsn)
    io_loop.run_sync(pg.start)
    yield pg
    io_loop.run_sync(pg.close)


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """settings with dotted keys replaced: with_overrides(s, **{"cmx.hosts": ("x",)})."""
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if "." in key:
            sub, _, leaf = key.partition(".")
            inner = getattr(getattr(settings, section), sub)
            value = dataclasses.replace(inner, **{leaf: value})
            key = sub
        settings = dataclasses.replace(
            settings, **{section: dataclasses.replace(getattr(settings, section), **{key: value})})
    return settings


@pytest.fixture
def settings(db: TestDatabase, tmp_path: Path) -> Settings:
    """The shipped default config pointed at the test database, flushed only on demand,
    with a spill directory of the test's own (never the checkout's var/spill), and the
    classic distance filter.

    Pinned to classic because tests through the app assert DESIGN 6's arithmetic (ten
    notifications 50 ft apart credit 121.92 m, a held leg, ...), which is that filter's;
    the shipped default, tracking.filter: adaptive, is tested where a test asks for it
    (overrides {"tracking.filter": "adaptive"}; tests/core/test_adaptive.py).
    TYS_TEST_TIMEZONE, when set, is the event's time zone (the clock-marked runs of CI).
    """
    base = load_settings("conf/tys.yaml", environ={})
    timezone = test_timezone()
    pinned = {"tracking.timezone": timezone} if timezone is not None else {}
    return with_overrides(base, **{"database.dsn": db.dsn, "database.flush_interval_s": 3600.0,
                                   "database.spill_dir": str(tmp_path / "spill"),
                                   "tracking.filter": "classic", **pinned})


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Tests override settings by parametrising or replacing this fixture."""
    return {}


@pytest.fixture
def runtime_clock() -> Callable[[], float]:
    """The runtime's "now" (feeds, receive times, the service): a test may give a Clock."""
    return time.time


@pytest.fixture
def day_clock(settings: Settings) -> Clock:
    """The run's "now" (TYS_TEST_NOW's when pinned), moved on if need be so that two hours
    of its event day lie behind it; still until the test moves it. A test's walks in those
    two hours are "today" at any hour: a module hands it to the runtime by overriding
    runtime_clock with it."""
    return Clock(room_in_day(time.time(), settings.tracking.timezone))


@pytest.fixture
def runtime(io_loop: Any, settings: Settings, overrides: dict[str, Any],
            runtime_clock: Callable[[], float]) -> Iterator[Runtime]:
    """A started runtime (database, state, service) on the test database."""
    rt = Runtime(with_overrides(settings, **overrides), clock=runtime_clock)
    io_loop.run_sync(rt.start)
    try:
        yield rt
    finally:
        io_loop.run_sync(rt.stop)


@pytest.fixture
def app(runtime: Runtime) -> Any:
    """pytest-tornado serves this app on a free port (http_server, base_url)."""
    return runtime.application()


def basic(pair: tuple[str, str]) -> str:
    """Authorization header value for a username/password pair."""
    return basic_auth(*pair)["Authorization"]


@pytest.fixture
def post(http_client: Any, base_url: str) -> Callable[..., Any]:
    """await post(path, body, auth=API_AUTH) → HTTPResponse (never raises on status)."""

    async def _post(path: str, body: Any = None, *, auth: tuple[str, str] | None = API_AUTH,
                    raw: bytes | None = None, content_type: str = "application/json",
                    method: str = "POST") -> tornado.httpclient.HTTPResponse:
        headers = {"Content-Type": content_type}
        if auth is not None:
            headers["Authorization"] = basic(auth)
        payload = raw if raw is not None else (orjson.dumps(body) if body is not None else b"")
        return await http_client.fetch(
            base_url + path, method=method, headers=headers,
            body=payload if method in ("POST", "PUT", "PATCH") else None,
            raise_error=False, allow_nonstandard_methods=True)

    return _post


def json_of(response: tornado.httpclient.HTTPResponse) -> Any:
    """Decoded JSON body of a reply (asserting it is JSON)."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), \
        response.headers.get("Content-Type")
    return orjson.loads(response.body)



@pytest.fixture
def io_loop() -> Iterator[tornado.ioloop.IOLoop]:
    """pytest-tornado's io_loop, without the stray asyncio loop it leaves behind.

    IOLoop.make_current() asks asyncio for the "current" loop to restore later;
    with none set, asyncio creates one that nobody closes, and its self-pipe
    socket surfaces as a ResourceWarning in some later test.
    """
    loop = tornado.ioloop.IOLoop()
    loop.make_current()
    yield loop
    loop.clear_current()
    loop.close(all_fds=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            stray = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            stray = None
    if stray is not None and not stray.is_running() and not stray.is_closed():
        stray.close()
    asyncio.set_event_loop(None)
