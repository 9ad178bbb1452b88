"""web/limits: which rule a request target falls under (the HTTP behaviour is in
test_hostile_input.py, against the real server)."""

from __future__ import annotations

import tornado.web

from tys_server.config import Credentials
from tys_server.web.base import BasicAuth
from tys_server.web.limits import BodyLimit, PathRule

AUTH = BasicAuth(Credentials("cmx", "pw"))
NOTIFY = PathRule("/notification", AUTH)
LIVE = PathRule("/live", AUTH, 64 * 1024, below=True)
MERAKI = PathRule("/hook-4711/", max_body_bytes=16 << 20)  # configured with a slash


def guard() -> BodyLimit:
    return BodyLimit(tornado.web.Application([]), 4 << 20, rules=[NOTIFY, LIVE, MERAKI],
                     path_caps={"/other": 10})


def test_a_path_takes_its_rule_with_or_without_slash_or_query() -> None:
    limit = guard()
    for target in ("/notification", "/notification/", "/notification?x=1"):
        assert limit.rule_for(target) is NOTIFY, target
    for target in ("/hook-4711", "/hook-4711/", "/hook-4711?a=b"):
        assert limit.rule_for(target) is MERAKI, target
    assert limit.rule_for("/other").max_body_bytes == 10  # path_caps become rules too


def test_a_rule_below_covers_every_path_under_it_and_no_sibling() -> None:
    limit = guard()
    for target in ("/live", "/live/", "/live/leaderboard", "/live/nothing/here?x"):
        assert limit.rule_for(target) is LIVE, target
    for target in ("/liveboard", "/notification/area", "/hook-4711/x", "/", "/healthz"):
        assert limit.rule_for(target) is None, target
