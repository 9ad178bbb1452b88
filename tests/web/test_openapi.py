"""docs/openapi.yaml: valid OpenAPI 3.1, in step with the code, served as is, honoured live.

The live part starts the real server (``python -m tys_server``) as a subprocess on the
run's test database and points the schemathesis CLI at it. How that run is configured,
and why each check is on or off, is in ``SCHEMATHESIS_TOML`` below.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
import schemathesis
import yaml

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH, TestDatabase, basic
from tests.support.event import ADMIN_AUTH
from tests.support.procserver import ServerProcess
from tys_server.web.notify import BAD_ENVELOPE

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
CONFIG_PATH = ROOT / "conf" / "tys.yaml"
# Where reply texts are written: the service's encoded replies and the web layer.
TEXT_SOURCES = (*sorted((ROOT / "tys_server" / "service").glob("*.py")),
                *sorted((ROOT / "tys_server" / "web").glob("*.py")))

OPERATIONS = {
    "POST /notification", "POST /notification/area",
    "POST /live/register_username", "POST /live/delete_username",
    "POST /live/username_data", "POST /live/leaderboard", "POST /live/ip_username",
    "POST /live/profile",
    "POST /admin/export", "POST /admin/disqualify", "POST /admin/requalify",
    "POST /admin/erase", "POST /admin/purge",
    "GET /healthz", "HEAD /healthz", "GET /openapi.yaml", "GET /metrics", "GET /status",
    "GET /board", "HEAD /board",
}
# Calls whose text argument is an error text: a 400 of a request reader, the error writer.
ERROR_TEXT_CALLS = {"BadRequest": 0, "send_json_error": 1, "error_body": 0}
REPLY_TEXT_KEYS = {"success", "info", "error"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Schemathesis run (CLI, one worker, against the live server):
# - phases: examples (every request example of the spec, sent as is), coverage
#   (deterministic boundary and negative values of each field: limits and limits +/- 1,
#   wrong types, missing required keys, other methods) and fuzzing (Hypothesis,
#   positive and negative data, MAX_EXAMPLES per operation, derandomized: the same
#   cases every run). Stateful is off: the spec has no links to follow.
#   About 1,000 requests in 10-15 s.
# - checks on: not_a_server_error (no 5xx: with CMX in test mode and the database up,
#   none of the documented 500/503 can legitimately happen), status_code_conformance,
#   content_type_conformance, response_headers_conformance (401 carries
#   WWW-Authenticate), response_schema_conformance (the error texts are consts/enums in
#   the spec, so a changed text fails here), negative_data_rejection (a body that
#   breaks the request schema of /live/* must get a 4xx), ignored_auth (a request
#   without / with wrong credentials must get 401), missing_required_header,
#   allow_header_conformance, unsupported_method, use_after_free, ensure_resource_availability.
# - checks off:
#   * positive_data_acceptance: a schema-valid body may still be refused with a
#     documented 400, by design: JSON Schema cannot say "printable" (Python's
#     str.isprintable), "a calendar day" (02/31/2024), or "a JSON integer literal"
#     (JSON Schema counts 5.0 as an integer; DESIGN 7 wants 400 for it).
#   * negative_data_rejection on the two notification paths only: DESIGN 5 says a
#     malformed entry is counted as rejected inside a 200, never refused, so an entry
#     that breaks the item schema is *supposed* to be accepted.
#   * max_response_time (not configured, so off): timing, flaky on a loaded CI machine.
MAX_EXAMPLES = 40
MAX_BODY_BYTES = 256 * 1024
SCHEMATHESIS_TIMEOUT_S = 150.0
SCHEMATHESIS_TOML = f"""
workers = 1
continue-on-failure = true
max-failures = 30

[generation]
mode = "all"
max-examples = {MAX_EXAMPLES}
deterministic = true
database = "none"

[phases.examples]
enabled = true
[phases.coverage]
enabled = true
[phases.fuzzing]
enabled = true
[phases.stateful]
enabled = false

[checks]
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_headers_conformance.enabled = true
response_schema_conformance.enabled = true
negative_data_rejection.enabled = true
ignored_auth.enabled = true
missing_required_header.enabled = true
allow_header_conformance.enabled = true
use_after_free.enabled = true
ensure_resource_availability.enabled = true
positive_data_acceptance.enabled = false

[auth.openapi.cmx]
username = "{CMX_AUTH[0]}"
password = "{CMX_AUTH[1]}"

[auth.openapi.api]
username = "{API_AUTH[0]}"
password = "{API_AUTH[1]}"

[auth.openapi.monitor]
username = "{MONITOR_AUTH[0]}"
password = "{MONITOR_AUTH[1]}"

[auth.openapi.admin]
username = "{ADMIN_AUTH[0]}"
password = "{ADMIN_AUTH[1]}"

[[operations]]
include-path = ["/notification", "/notification/area"]
checks.negative_data_rejection.enabled = false
"""


def load_spec() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(spec, dict)
    return spec


def resolve(spec: dict[str, Any], node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow a local $ref (requestBodies, responses); return the node and its pointer."""
    while "$ref" in node:
        pointer = node["$ref"]
        assert pointer.startswith("#/"), pointer
        node = spec
        for part in pointer[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def media_types(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(operation label, media type, media object, JSON pointer of its schema) of every body."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            base = f"#/paths/{escape(path)}/{method}"
            label = f"{method.upper()} {path}"
            bodies = []
            if "requestBody" in operation:
                bodies.append(("request", operation["requestBody"], f"{base}/requestBody"))
            for status, response in operation["responses"].items():
                bodies.append((status, response, f"{base}/responses/{status}"))
            for what, body, pointer in bodies:
                body, pointer = resolve(spec, body, pointer)
                for media, obj in body.get("content", {}).items():
                    yield f"{label} {what}", media, obj, f"{pointer}/content/{escape(media)}/schema"


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


# -- the document itself ---------------------------------------------------------------


def test_spec_is_valid_openapi_3_1() -> None:
    spec = load_spec()
    assert str(spec["openapi"]).startswith("3.1.")
    schema = schemathesis.openapi.from_path(SPEC_PATH)
    schema.validate()  # the official OpenAPI 3.1 meta-schema; raises on any violation
    labels = set()
    for result in schema.get_all_operations():
        labels.add(result.ok().label)  # .ok() raises if an operation cannot be built
    assert labels == OPERATIONS


def test_a_broken_spec_is_noticed() -> None:
    """The validity test above can fail: an unknown response field breaks the meta-schema."""
    spec = load_spec()
    spec["paths"]["/healthz"]["get"]["responses"]["200"]["contents"] = {}
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(spec).validate()


def test_every_schema_is_a_valid_json_schema() -> None:
    spec = load_spec()
    for name, schema in spec["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for label, media, obj, _ in media_types(spec):
        assert jsonschema_rs.meta.is_valid(obj["schema"]), (label, media)


def test_every_body_has_examples_that_match_its_schema() -> None:
    spec = load_spec()
    checked = 0
    for label, media, obj, pointer in media_types(spec):
        if media == "application/yaml":
            continue  # GET /openapi.yaml: the example would be this document
        examples = [obj["example"]] if "example" in obj else []
        examples += [example["value"] for example in obj.get("examples", {}).values()]
        assert examples, f"{label} {media}: no example"
        validator = jsonschema_rs.validator_for({**spec, "$ref": pointer}, validate_formats=True)
        for example in examples:
            errors = [error.message for error in validator.iter_errors(example)]
            assert not errors, (label, example, errors)
            checked += 1
    assert checked >= 40


def test_the_schemas_accept_and_refuse_like_design_section_7() -> None:
    """Spot checks of the request limits a front-end developer relies on."""
    spec = load_spec()

    def valid(schema_name: str, value: Any) -> bool:
        root = {**spec, "$ref": f"#/components/schemas/{schema_name}"}
        return jsonschema_rs.validator_for(root, validate_formats=True).is_valid(value)

    assert valid("RegisterRequest", {"username": "a" * 64, "ip": "10.0.0.1"})
    assert valid("RegisterRequest", {"username": "a@b.c", "ip": "fd00::1", "add_device": True})
    for bad in ({"username": "", "ip": "10.0.0.1"}, {"username": "a" * 65, "ip": "10.0.0.1"},
                {"username": "@a", "ip": "10.0.0.1"}, {"username": " a", "ip": "10.0.0.1"},
                {"username": "a\n", "ip": "10.0.0.1"}, {"username": "a", "ip": "x"},
                {"username": "a", "ip": "10.0.0.1", "add_device": 1}, {"username": "a"}):
        assert not valid("RegisterRequest", bad), bad
    assert valid("UsernameDataRequest", {"username": "a", "days": 366})
    for days in (0, 367, "5", 2.5, True):
        assert not valid("UsernameDataRequest", {"username": "a", "days": days}), days
    assert valid("LeaderboardRequest", {})
    assert valid("LeaderboardRequest", {"number_leaders": 100, "date": "06/11/2024"})
    for bad in ({"number_leaders": 0}, {"number_leaders": 101}, {"number_leaders": "5"},
                {"date": "2024-06-11"}, {"date": 20240611}):
        assert not valid("LeaderboardRequest", bad), bad
    assert valid("Health", {"status": "ok", "database": "up", "last_flush_age_s": None,
                            "backlog": 0})
    assert valid("NotOnWifiText", "Connect to #clus WiFi first")


def test_every_reply_text_of_the_code_is_documented() -> None:
    """Each error / success text the service and web/ write is in the spec."""
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in TEXT_SOURCES]
    assigned = {target.id: node.value.value for tree in trees for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                for target in node.targets if isinstance(target, ast.Name)}

    def text_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return assigned.get(node.id) if isinstance(node, ast.Name) else None  # f-strings: below

    found: list[str | None] = []
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            position = ERROR_TEXT_CALLS.get(name or "")
            if position is not None and len(node.args) > position:
                found.append(text_of(node.args[position]))
        elif isinstance(node, ast.Dict):  # {"success": ...} replies
            found += [text_of(value) for key, value in zip(node.keys, node.values, strict=True)
                      if isinstance(key, ast.Constant) and key.value in REPLY_TEXT_KEYS]
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 \
                and isinstance(node.elts[0], ast.Constant) and type(node.elts[0].value) is int:
            found.append(text_of(node.elts[1]))  # (status, text) of a refusal's reply
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript) \
                and getattr(node.targets[0].slice, "value", None) in REPLY_TEXT_KEYS:
            found.append(text_of(node.value))  # reply["error"] = ...
    texts = {text for text in found if text is not None}
    texts |= {BAD_ENVELOPE, "Unauthorized", "Method Not Allowed", "Not found"}
    assert len(texts) >= 20, sorted(texts)
    documented = set(strings_in(load_spec()))
    prose = SPEC_PATH.read_text(encoding="utf-8")
    for text in sorted(texts):
        assert text in documented or f'"error": "{text}"' in prose, text
    # The one text built from config is documented as a pattern, with the default.
    assert "Connect to #clus WiFi first" in documented


# -- the live server -------------------------------------------------------------------


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; never raises on an HTTP status."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def live_server(postgres: TestDatabase) -> Iterator[ServerProcess]:
    """One server for this module (start-up is the slow part); the database emptied first."""
    postgres.clear()
    with tempfile.TemporaryDirectory(prefix="tys-") as workdir:  # short: a socket path
        server = ServerProcess(Path(workdir), "openapi", config=str(CONFIG_PATH), env={
            "TYS_DATABASE_DSN": postgres.dsn,
            # Flush every second, so the notifications the fuzzer gets accepted are also
            # written to PostgreSQL during the run (a flush error is caught by the log check).
            "TYS_DATABASE_FLUSH_INTERVAL_S": "1",
            "TYS_LOGGING_LEVEL": "INFO",
            # Small enough for test_bodies_over_the_limit_get_413 to send; far above
            # anything the fuzzer generates.
            "TYS_SERVER_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        })
        try:
            server.wait_for("READY=1")
            yield server
            status = server.terminate()  # graceful: drain, final flush
            assert status == 0, f"server exit status {status}:\n{server.log()}"
        finally:
            server.close()
            postgres.clear()


@pytest.mark.db
@pytest.mark.slow
def test_served_description_is_the_file(live_server: ServerProcess) -> None:
    status, headers, body = fetch(live_server.url + "/openapi.yaml")
    assert status == 200
    assert headers["Content-Type"] == "application/yaml"
    assert body == SPEC_PATH.read_bytes()


@pytest.mark.db
@pytest.mark.slow
@pytest.mark.parametrize(("path", "method", "pair"), [
    ("/live/leaderboard", "GET", API_AUTH),
    ("/live/register_username", "PUT", API_AUTH),
    ("/live/ip_username", "DELETE", API_AUTH),
    ("/notification", "GET", CMX_AUTH),
    ("/healthz", "POST", None),
    ("/openapi.yaml", "POST", None),
])
def test_other_methods_get_a_json_405(live_server: ServerProcess, path: str, method: str,
                                      pair: tuple[str, str] | None) -> None:
    headers = {"Authorization": basic(pair)} if pair else {}
    body = b"{}" if method in ("POST", "PUT") else None
    status, reply_headers, reply = fetch(live_server.url + path, method, headers, body)
    assert status == 405
    assert reply_headers["Content-Type"] == "application/json"
    assert orjson.loads(reply) == {"error": "Method Not Allowed"}


@pytest.mark.db
@pytest.mark.slow
def test_405_lists_the_allowed_methods(live_server: ServerProcess) -> None:
    status, headers, _ = fetch(live_server.url + "/live/leaderboard", "GET",
                               {"Authorization": basic(API_AUTH)})
    assert status == 405
    assert headers.get("Allow") == "POST"


@pytest.mark.db
@pytest.mark.slow
@pytest.mark.parametrize(("path", "pair"), [("/notification", CMX_AUTH),
                                            ("/live/leaderboard", API_AUTH)])
def test_bodies_over_the_limit_get_413(live_server: ServerProcess, path: str,
                                       pair: tuple[str, str]) -> None:
    body = b'{"notifications": [' + b"{}," * (MAX_BODY_BYTES // 3) + b"{}]}"
    assert len(body) > MAX_BODY_BYTES
    status, headers, reply = fetch(live_server.url + path, "POST",
                                   {"Authorization": basic(pair),
                                    "Content-Type": "application/json"}, body)
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    pointer = "#/components/responses/PayloadTooLarge/content/application~1json/schema"
    validator = jsonschema_rs.validator_for({**load_spec(), "$ref": pointer})
    validator.validate(orjson.loads(reply))


@pytest.mark.db
@pytest.mark.slow
def test_schemathesis_finds_no_contract_break(live_server: ServerProcess, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_TOML, encoding="utf-8")
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               str(SPEC_PATH), "--url", live_server.url, "--no-color",
               "--request-timeout", "10"]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    # The timeout is a hang guard (TimeoutExpired), not a bound on schemathesis' speed.
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=SCHEMATHESIS_TIMEOUT_S, check=False)
    output = result.stdout + result.stderr
    print(output)  # the run's summary, shown with -rP or on failure
    assert result.returncode == 0, f"schemathesis found problems:\n{output}"
    # Every operation was exercised, and a real number of cases ran.
    assert f"{len(OPERATIONS)} selected / {len(OPERATIONS)} total" in output, output
    assert f"Tested: {len(OPERATIONS)}" in output, output
    assert "generated" in output, output
    # Nothing went wrong inside the server either (e.g. a flush that fails on fuzzed data).
    log = live_server.log()
    assert " ERROR " not in log and "Traceback" not in log, log
    status, _, body = fetch(live_server.url + "/healthz")
    assert status == 200, body
