"""The benchmark's reference: the Tornado framework's ceiling on this machine.

``python -m tools.bench_reference --port N [--replies FILE] [--bare]`` serves the same
routes as TYS with handlers that only parse the request body with the same JSON library
(orjson) and answer a fixed, pre-encoded reply. No authentication, no validation, no
state, no access log: whatever TYS does beyond this is its own cost, so TYS / reference is
the share of the framework's ceiling that TYS keeps.

The HTTP server runs with TYS's own server settings (conf/tys.yaml: body and idle
timeouts, body and header size limits), because those are the framework's work, not the
handlers': Tornado arms a timer per request for each timeout, about a tenth of a small
request's cost. ``--bare`` serves with Tornado's defaults instead, to show that cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import tornado.httpserver
import tornado.web

ROOT = Path(__file__).resolve().parents[1]
NOTIFICATION_REPLY = b'{"accepted":1,"ignored":0,"rejected":0}'


class FixedReplyHandler(tornado.web.RequestHandler):
    """POST: decode the JSON body, then write the same bytes every time."""

    reply: bytes

    def initialize(self, reply: bytes) -> None:
        self.reply = reply

    def post(self, *_: str) -> None:
        orjson.loads(self.request.body)
        self.set_header("Content-Type", "application/json")
        self.finish(self.reply)


def _no_log(_handler: tornado.web.RequestHandler) -> None:
    """The ceiling logs nothing per request."""


def make_reference_app(replies: dict[str, bytes]) -> tornado.web.Application:
    """Routes of TYS's hot paths; replies maps a /live/ endpoint name to its fixed body."""
    routes: list[tuple[str, type[tornado.web.RequestHandler], dict[str, bytes]]] = [
        (r"/notification(/area)?/?", FixedReplyHandler, {"reply": NOTIFICATION_REPLY})]
    for name in ("leaderboard", "username_data"):
        routes.append((rf"/live/{name}/?", FixedReplyHandler,
                       {"reply": replies.get(name, b"{}")}))
    return tornado.web.Application(routes, log_function=_no_log, compress_response=False)


def load_replies(path: Path | None) -> dict[str, bytes]:
    """{"leaderboard": "<json text>", ...} from a file written by the bench."""
    if path is None:
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {name: text.encode() for name, text in raw.items()}


def server_options(bare: bool) -> dict[str, Any]:
    """HTTPServer keyword arguments: TYS's (as server.Runtime.listen passes them) or none."""
    if bare:
        return {}
    from tys_server.config import load_settings

    server = load_settings(ROOT / "conf" / "tys.yaml", environ={}).server
    return {"max_body_size": server.max_body_bytes, "body_timeout": server.body_timeout_s,
            "idle_connection_timeout": server.idle_connection_timeout_s,
            "max_header_size": 16 * 1024}


async def serve(port: int, replies: dict[str, bytes], bare: bool) -> None:
    """Listen on 127.0.0.1:port until SIGTERM/SIGINT."""
    server = tornado.httpserver.HTTPServer(make_reference_app(replies), **server_options(bare))
    server.listen(port, "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("READY", flush=True)
    await stop.wait()
    server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """python -m tools.bench_reference --port N [--replies FILE]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", type=Path, help="fixed /live/ replies (JSON file)")
    parser.add_argument("--bare", action="store_true",
                        help="Tornado's default server settings instead of TYS's")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, load_replies(args.replies), args.bare))


if __name__ == "__main__":
    main()
