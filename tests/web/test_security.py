"""Who may call what, refusing unsafe start-up, TLS, secrets in logs, SQL injection."""

from __future__ import annotations

import ast
import asyncio
import base64
import logging
import os
import re
import shutil
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH, TABLES, basic, json_of
from tests.support import rawhttp
from tests.support.procserver import free_port
from tools.cmx_sim import fake_cmx
from tools.cmx_sim.fake_cmx import FakeCmx
from tys_server import server as server_module
from tys_server.config import ConfigError, Credentials, load_settings
from tys_server.server import tls_context
from tys_server.web import base
from tys_server.web.base import SECURITY_HEADERS, BasicAuth
from tys_server.web.limits import TOO_LARGE

ROOT = Path(__file__).resolve().parents[2]
CMX_ONLY = ["/notification", "/notification/area"]
API_ONLY = ["/live/register_username", "/live/delete_username", "/live/username_data",
            "/live/leaderboard", "/live/ip_username"]
MONITOR_ONLY = ["/metrics", "/status"]
PAIRS = (CMX_AUTH, API_AUTH, MONITOR_AUTH)
OWNER = {**dict.fromkeys(CMX_ONLY, CMX_AUTH), **dict.fromkeys(API_ONLY, API_AUTH),
         **dict.fromkeys(MONITOR_ONLY, MONITOR_AUTH)}


# -- credentials -------------------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("path", CMX_ONLY + API_ONLY + MONITOR_ONLY)
async def test_each_pair_opens_only_its_own_endpoints(post: Any, path: str) -> None:
    # The app alone (no web.limits in front): the handlers' own check, defence in depth.
    # test_hostile_input.py shows the same refusals on the headers, before any body.
    own = OWNER[path]
    others = [pair for pair in PAIRS if pair != own]
    method = "GET" if path in MONITOR_ONLY else "POST"
    body = {"notifications": []} if path in CMX_ONLY else {}
    refused = [*others, *((own[0], other[1]) for other in others),
               *((other[0], own[1]) for other in others), (own[0], ""), ("", own[1]),
               (own[0], own[1] + "x"), (own[0].upper(), own[1]), None]
    for pair in refused:
        reply = await post(path, body, auth=pair, method=method)
        assert reply.code == 401, (path, pair)
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="TYS"'
        assert json_of(reply) == {"error": "Unauthorized"}
    reply = await post(path, body, auth=own, method=method)
    assert reply.code != 401


def test_basic_auth_accepts_only_its_exact_pair() -> None:
    auth = BasicAuth(Credentials("cmx", "s3cret:with:colons"))
    token = base64.b64encode(b"cmx:s3cret:with:colons").decode()
    assert auth.allows("Basic " + token)
    assert auth.allows("basic  " + token)  # scheme is case-insensitive
    for header in (None, "", "Basic", "Bearer " + token, "Basic " + token[:-2],
                   "Basic !!!!", "Basic " + base64.b64encode(b"cmx:s3cret").decode(),
                   "Basic " + base64.b64encode(b"cmx").decode(),
                   "Basic " + base64.b64encode(b"cmx:s3cret:with:colons\x00").decode()):
        assert not auth.allows(header), header


def test_credential_checks_compare_both_halves_in_constant_time(monkeypatch: Any) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = base.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(base.hmac, "compare_digest", spy)
    auth = BasicAuth(Credentials("cmx", "right"))
    for user, password in (("cmx", "wrong"), ("xyz", "right"), ("xyz", "wrong")):
        compared.clear()
        header = "basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        assert not auth.allows(header)
        # No early exit on the user name: the password is compared as well, so the
        # time taken does not tell which half was wrong.
        assert (user.encode(), b"cmx") in compared
        assert (password.encode(), b"right") in compared


# -- refusing to start with example secrets on a public address ------------------------------

def write_config(path: Path, host: str, cmx_password: str | None = None,
                 api_password: str | None = None) -> Path:
    text = (ROOT / "conf" / "tys.yaml").read_text().replace(
        "host: 127.0.0.1", f"host: {host!r}" if host else 'host: ""')
    if cmx_password is not None:
        text = text.replace("password: change-me-cmx", f"password: {cmx_password!r}")
    if api_password is not None:
        text = text.replace("password: change-me-api", f"password: {api_password!r}")
    path.write_text(text)
    return path


@pytest.fixture
def no_tys_environment(monkeypatch: Any) -> None:
    for name in list(os.environ):
        if name.startswith("TYS_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_tys_environment")
@pytest.mark.parametrize(("host", "cmx_password", "api_password", "key"), [
    ("0.0.0.0", None, None, "auth.notification.password"),
    ("", None, None, "auth.notification.password"),
    ("::", "a-real-secret", None, "auth.api.password"),
    ("10.1.2.3", "a-real-secret", "", "auth.api.password"),
    ("tys.example.org", "", "another-secret", "auth.notification.password"),
    ("192.168.1.5", "change-me-api", "another-secret", "auth.notification.password"),
])
def test_server_refuses_to_start_on_a_public_address_with_example_or_empty_passwords(
        tmp_path: Path, capsys: Any, host: str, cmx_password: str | None,
        api_password: str | None, key: str) -> None:
    config = write_config(tmp_path / "tys.yaml", host, cmx_password, api_password)
    assert server_module.main(["--config", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert key in lines[0] and "not loopback" in lines[0]
    assert "change-me" not in lines[0]  # the line names the key, never a password


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_example_passwords_are_fine_on_loopback(tmp_path: Path, host: str) -> None:
    settings = load_settings(write_config(tmp_path / "tys.yaml", host), environ={})
    assert settings.server.host == host


def test_secrets_from_the_environment_allow_a_public_address(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tys.yaml", "0.0.0.0")
    with pytest.raises(ConfigError):
        load_settings(config, environ={"TYS_AUTH_NOTIFICATION_PASSWORD": "s1"})
    settings = load_settings(config, environ={"TYS_AUTH_NOTIFICATION_PASSWORD": "s1",
                                              "TYS_AUTH_API_PASSWORD": "s2",
                                              "TYS_AUTH_MONITOR_PASSWORD": "s3",
                                              "TYS_AUTH_ADMIN_PASSWORD": "s4"})
    assert (settings.auth.notification.password, settings.auth.api.password) == ("s1", "s2")


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: Any) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost / 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def client_context(cert: Path, *, highest: ssl.TLSVersion | None = None,
                   lowest: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; this client offers them on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        if lowest is not None:
            context.minimum_version = lowest
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 hides them otherwise
        if highest is not None:
            context.maximum_version = highest
    return context


class TestTls:
    @pytest.fixture
    def overrides(self, certificate: tuple[Path, Path]) -> dict[str, Any]:
        cert, key = certificate
        return {"server.port": free_port(), "server.tls_cert": str(cert),
                "server.tls_key": str(key), "server.max_body_bytes": 4096}

    @pytest.fixture
    def port(self, runtime: Any) -> int:
        runtime.listen()
        return int(runtime.settings.server.port)

    def test_context_is_modern(self, runtime: Any) -> None:
        context = tls_context(runtime.settings)
        assert context is not None
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
        assert tls12 and all(name.startswith("ECDHE-") for name in tls12)
        assert all("GCM" in name or "CHACHA20" in name for name in tls12)
        assert tls12[0].endswith("GCM-SHA384")  # AES-GCM first, as the seed preferred

    @pytest.mark.gen_test(timeout=20)
    async def test_https_answers_with_the_security_headers_on_every_response(
            self, port: int, certificate: tuple[Path, Path]) -> None:
        context = client_context(certificate[0])
        requests = {
            200: rawhttp.request_bytes("GET", "/healthz"),
            201: rawhttp.request_bytes("POST", "/live/register_username",
                                       b'{"username": "Alice", "ip": "10.0.0.7"}', auth=API_AUTH),
            400: rawhttp.request_bytes("POST", "/notification", b"nope", auth=CMX_AUTH),
            401: rawhttp.request_bytes("POST", "/live/leaderboard", b"{}"),
            404: rawhttp.request_bytes("GET", "/nowhere"),
            405: rawhttp.request_bytes("GET", "/live/leaderboard", auth=API_AUTH),
            413: rawhttp.request_bytes("POST", "/notification", b"{}", auth=CMX_AUTH,
                                       length=5000),
        }
        for status, data in requests.items():
            reply = await rawhttp.exchange(port, data, context=context)
            assert reply.status == status, reply
            for name, value in SECURITY_HEADERS:
                assert reply.headers.get(name.lower()) == value, (status, name)
            if status == 413:
                assert reply.json() == {"error": TOO_LARGE}

    @pytest.mark.gen_test(timeout=20)
    async def test_tls_1_2_negotiates_ecdhe_with_aes_gcm(
            self, port: int, certificate: tuple[Path, Path]) -> None:
        context = client_context(certificate[0], highest=ssl.TLSVersion.TLSv1_2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                       server_hostname="localhost")
        tls = writer.get_extra_info("ssl_object")
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()[0]
        assert cipher.startswith("ECDHE-") and "AES" in cipher and "GCM" in cipher
        writer.close()
        newest = await rawhttp.exchange(port, rawhttp.request_bytes("GET", "/healthz"),
                                        context=client_context(certificate[0]))
        assert newest.status == 200

    @pytest.mark.gen_test(timeout=20)
    @pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1],
                             ids=["TLSv1.0", "TLSv1.1"])
    async def test_tls_before_1_2_is_refused(self, port: int, certificate: tuple[Path, Path],
                                             version: ssl.TLSVersion) -> None:
        context = client_context(certificate[0], lowest=version, highest=version)
        with pytest.raises(ssl.SSLError) as refused:
            await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                          server_hostname="localhost")
        # The server said no (its protocol-version alert): this client did offer it.
        assert "ALERT_PROTOCOL_VERSION" in str(refused.value), refused.value
        reply = await rawhttp.exchange(port, rawhttp.request_bytes("GET", "/healthz"),
                                       context=client_context(certificate[0]))
        assert reply.status == 200

    @pytest.mark.gen_test(timeout=20)
    async def test_plain_http_on_the_tls_port_gets_no_answer(self, port: int) -> None:
        reply = await rawhttp.exchange(port, rawhttp.request_bytes("GET", "/healthz"))
        assert reply.closed  # the TLS handshake failed: no plaintext answer at all


@pytest.mark.gen_test
async def test_without_tls_no_transport_security_header_is_sent(post: Any) -> None:
    reply = await post("/healthz", method="GET", auth=None)
    assert reply.code == 200
    for name, _ in SECURITY_HEADERS:
        assert name not in reply.headers


# -- logs --------------------------------------------------------------------------------------

PHONE_IP = "10.77.1.2"
PHONE_MAC = "aa:bb:cc:10:77:02"
WALKER_MAC = "00:de:ad:be:ef:01"
WRONG = "wrong-secret-4711"
MAC_TEXT = re.compile(r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}", re.IGNORECASE)


class TestLogs:
    @pytest.fixture
    def cmx_hosts(self, io_loop: Any) -> Iterator[list[str]]:
        server, host = fake_cmx.start(FakeCmx(clients={PHONE_IP: PHONE_MAC}))
        yield [fake_cmx.refusing_host(), host]
        server.stop()

    @pytest.fixture
    def overrides(self, cmx_hosts: list[str]) -> dict[str, Any]:
        return {"cmx.hosts": tuple(cmx_hosts), "cmx.timeout_s": 0.5,
                "cmx.ip2mac_url": "http://{host}/api/location/v2/clients?ipAddress={ip}",
                "cmx.username": fake_cmx.USERNAME, "cmx.password": fake_cmx.PASSWORD}

    @pytest.mark.gen_test(timeout=20)
    async def test_logs_hold_no_secret_and_no_mac_or_phone_ip_at_info(
            self, post: Any, runtime: Any, caplog: Any) -> None:
        caplog.set_level(logging.DEBUG)  # as logging.level DEBUG would; curl stays at INFO
        now_ms = int(time.time() * 1000)
        walk = [{"notificationType": "movement", "deviceId": WALKER_MAC.upper(), "floorId": 1,
                 "locationCoordinate": {"x": 50.0 * i, "y": 0.0}, "moveDistanceInFt": 50.0,
                 "timestamp": now_ms - 60_000 + 15_000 * i} for i in range(4)]
        walk.append({"notificationType": "inout", "deviceId": PHONE_MAC,
                     "locationMapHierarchy": "Venue>Hall A", "timestamp": now_ms})
        assert (await post("/notification", {"notifications": walk}, auth=CMX_AUTH)).code == 200
        for pair in ((CMX_AUTH[0], WRONG), API_AUTH, (API_AUTH[0], WRONG), CMX_AUTH):
            await post("/notification", {"notifications": walk}, auth=pair)
            await post("/live/leaderboard", {}, auth=pair)
        registered = await post("/live/register_username", {"username": "Ann", "ip": PHONE_IP})
        assert registered.code == 201
        for path, body in (("/live/ip_username", {"ip": PHONE_IP}),
                           ("/live/username_data", {"username": "Ann"}),
                           ("/live/register_username", {"username": "Bob", "ip": PHONE_IP}),
                           ("/live/register_username", {"username": "Eve", "ip": "8.8.8.8"}),
                           ("/live/delete_username", {"username": "Ann"})):
            await post(path, body)
        await post("/notification", raw=b"{broken", auth=CMX_AUTH)
        assert await runtime.flusher.flush_once()

        secrets = [CMX_AUTH[1], API_AUTH[1], fake_cmx.PASSWORD, WRONG, "Authorization",
                   basic(CMX_AUTH).split()[1], basic(API_AUTH).split()[1]]
        assert caplog.records  # the traffic did log (a CMX host was down, a user came...)
        for record in caplog.records:
            if "/api/location/" in record.getMessage():
                continue  # the fake CMX's own access log, in this process
            text = record.getMessage() + (caplog.handler.formatter.formatException(
                record.exc_info) if record.exc_info else "")
            for secret in secrets:
                assert secret not in text, (record.name, text)
            if record.levelno >= logging.INFO:
                assert not MAC_TEXT.search(text), (record.name, text)
                assert PHONE_IP not in text, (record.name, text)


# -- SQL ---------------------------------------------------------------------------------------

HOSTILE_NAMES = ["x'; DROP TABLE users; --", 'Robert"); DROP TABLE devices;--',
                 "%s%s%(x)s", "a\\'b", "$$; DELETE FROM distance; $$"]


@pytest.mark.gen_test
async def test_sql_in_values_is_stored_verbatim_and_tables_stay(post: Any, runtime: Any,
                                                                db: Any) -> None:
    for i, name in enumerate(HOSTILE_NAMES):
        reply = await post("/live/register_username", {"username": name, "ip": f"10.9.0.{i}"})
        assert reply.code == 201, name
        assert json_of(reply)["username"] == name
    zone = "Hall'); DROP TABLE zone; --"
    now_ms = int(time.time() * 1000)
    await post("/notification", {"notifications": [
        {"notificationType": "inout", "deviceId": "00:00:00:00:00:07",
         "locationMapHierarchy": zone, "timestamp": now_ms}]}, auth=CMX_AUTH)
    assert await runtime.flusher.flush_once()

    stored = sorted(name for (name,) in db.query("SELECT nickname FROM users"))
    assert stored == sorted(HOSTILE_NAMES)
    assert db.query("SELECT email FROM users WHERE nickname = %s", (HOSTILE_NAMES[0],)) == \
        [(HOSTILE_NAMES[0] + "@cmxtrackyoursteps.com",)]
    assert db.query("SELECT name FROM zone") == [(zone,)]
    present = {t for (t,) in db.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert set(TABLES) <= present
    assert db.query("SELECT count(*) FROM devices") == [(len(HOSTILE_NAMES),)]
    for name in HOSTILE_NAMES:
        data = await post("/live/username_data", {"username": name})
        assert data.code == 200 and json_of(data)[0]["username"] == name
        deleted = await post("/live/delete_username", {"username": name})
        assert deleted.code == 200, name
    assert db.query("SELECT count(*) FROM users") == [(0,)]


# Built SQL that is known and safe: an integer from the config, a database name
# made by the test fixtures or `make run` (identifiers cannot be parameters).
BUILT_SQL_ALLOWED = {
    ("pool.py", "SET LOCAL statement_timeout"),
    ("embedded.py", "CREATE DATABASE"),
}


def test_sql_text_is_never_built_from_values() -> None:
    found = []
    for path in sorted((ROOT / "tys_server").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "fetch", "mogrify") and node.args):
                continue
            sql = node.args[0]
            built = isinstance(sql, (ast.JoinedStr, ast.BinOp)) or (
                isinstance(sql, ast.Call) and isinstance(sql.func, ast.Attribute)
                and sql.func.attr in ("format", "join", "replace"))
            if built:
                text = ast.get_source_segment(path.read_text(), sql) or ""
                if not any(path.name == file and marker in text
                           for file, marker in BUILT_SQL_ALLOWED):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert not found, "SQL built from values instead of parameters:\n" + "\n".join(found)
