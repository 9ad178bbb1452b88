"""What one CMX host's reply to an IP→MAC look-up means (DESIGN section 9).

The v2 API answers a list of client records carrying ``macAddress``, or 204 with no body
for an unknown client; v3 answers stored notifications carrying ``deviceId``, or ``[]``.
Neither uses 404 for an unknown client, so a 404 means a wrong ``cmx.ip2mac_url``: the
host is down, and the error says where to look. Redirects are not followed (credentials
stay with the configured host), so a 3xx, like any status but 2xx and 204, is down too.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import HTTPResponse

from tys_server.core.macs import normalise_mac

_MAC_KEYS = ("macAddress", "deviceId")  # v2 client record, v3 stored notification


class HostDown(Exception):
    """One host failed to answer usefully; the text says why, for an operator (no secrets)."""


def mac_from_reply(response: HTTPResponse) -> str | None:
    """The MAC in one host's reply, None when it answered "unknown"; HostDown otherwise."""
    code = response.code
    if code in (401, 403):
        raise HostDown(f"HTTP {code}: CMX rejected cmx.username / cmx.password")
    if code == 404:
        raise HostDown("HTTP 404: no such API on this host, check cmx.ip2mac_url")
    if code == 204:
        return None
    if not 200 <= code < 300:
        raise HostDown(f"HTTP {code}")
    try:
        data = json.loads(response.body or b"")
    except (ValueError, RecursionError):
        raise HostDown(f"HTTP {code} with a body that is not JSON") from None
    if isinstance(data, dict) and isinstance(data.get("notifications"), list):
        data = data["notifications"]  # the notification envelope, as CMX POSTs it
    records: list[Any] = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise HostDown("unexpected JSON shape")
    for record in records:
        if isinstance(record, dict):
            for key in _MAC_KEYS:
                mac = normalise_mac(record.get(key))
                if mac is not None:
                    return mac
    if not all(isinstance(r, dict) and any(k in r for k in _MAC_KEYS) for r in records):
        raise HostDown("unexpected JSON shape")
    return None  # [] or records without a usable MAC: the host does not know the IP
