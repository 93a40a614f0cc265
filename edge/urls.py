"""Stream URLs: the schemes edge-har opens, credentials masked before anything shows them, and
the one rule for what kind of source a spec is (``source_kind``).

No OpenCV here: ``edge.config`` validates sources with it and stays light for ``config validate``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
SECRET_QUERY_KEYS = frozenset({
    "password", "passwd", "pass", "pwd", "token", "access_token", "auth", "key", "api_key",
    "apikey", "secret", "signature", "sig", "credentials",
})


def is_url(spec) -> bool:
    """True for a URL whose scheme is one edge-har opens as a stream."""
    text = str(spec)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return scheme in URL_SCHEMES


def mask_credentials(url: str) -> str:
    """Hide secrets in a URL: ``rtsp://user:pass@host`` → ``rtsp://user:***@host``.

    A user without a password (``rtsp://token@host``) becomes ``rtsp://***@host``;
    query values of secret-looking keys (``password``, ``token``, ``key``, …)
    become ``***``. Anything that is not a URL is returned unchanged.
    """
    text = str(url)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        # Unparseable: mask anything between the scheme and an '@'.
        return re.sub(r"(://)[^/@]*@", r"\1***@", text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}"
        else:
            netloc = f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in SECRET_QUERY_KEYS for key, _ in pairs):
            masked = [(key, "***" if key.lower() in SECRET_QUERY_KEYS else value) for key, value in pairs]
            query = urlencode(masked, safe="*/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def source_kind(spec) -> str:
    """The one rule for what a source is: ``"device"``, ``"stream"`` or ``"file"``.

    A device is a camera index (``0``, ``"0"``) or a V4L2 path (``/dev/video*``, or a
    udev name under ``/dev/v4l/``); a stream is a URL of ``URL_SCHEMES``; anything else,
    and None (the bundled sample clip), is a file.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return "device"
    text = "" if spec is None else str(spec)
    if text.strip().isdigit() or text.startswith(("/dev/video", "/dev/v4l/")):
        return "device"
    return "stream" if is_url(text) else "file"
