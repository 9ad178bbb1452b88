"""The benchmark's reference: the Tornado framework's ceiling on this machine.

``python -m tools.bench_reference --port N [--replies FILE]`` serves the same routes as TYS
with handlers that only parse the request body with the same JSON library (orjson) and
answer a fixed, pre-encoded reply. No authentication, no validation, no state, no access
log: whatever TYS does beyond this is its own cost, so TYS / reference is the share of the
framework's ceiling that TYS keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from pathlib import Path

import orjson
import tornado.web

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


async def serve(port: int, replies: dict[str, bytes]) -> None:
    """Listen on 127.0.0.1:port until SIGTERM/SIGINT."""
    app = make_reference_app(replies)
    server = app.listen(port, "127.0.0.1")
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
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, load_replies(args.replies)))


if __name__ == "__main__":
    main()
