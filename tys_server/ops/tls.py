"""The HTTPS server's TLS context, from server.tls_cert and server.tls_key.

TLS 1.2 and later with forward-secret AEAD ciphers only. Every way the files can be
unusable (unreadable, not PEM, not a pair, an encrypted key) stops start-up with one
line naming the key and the file (``startup.StartupError``), before the database starts.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from tys_server.config import Settings
from tys_server.ops.startup import StartupError


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A modern server context when both TLS files are configured; StartupError if unusable."""
    cert, key = settings.server.tls_cert, settings.server.tls_key
    if not (cert and key):
        return None
    for name, path in (("server.tls_cert", cert), ("server.tls_key", key)):
        try:
            Path(path).open("rb").close()
        except OSError as exc:
            raise StartupError("TLS", f"cannot read {name} {path}: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!MD5:!DSS")
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        reason = (exc.reason or "not PEM").lower().replace("_", " ")
        raise StartupError("TLS", f"server.tls_cert {cert} with server.tls_key {key}: not a "
                           f"PEM certificate and its key ({reason})") from None
    return context


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on a terminal that systemd does not have.
    raise StartupError("TLS", "server.tls_key is encrypted: give TYS a key without a passphrase")
