"""Credentials: Basic, from a URL's ``user:pass@``."""

from __future__ import annotations

import base64
import urllib.parse

__all__ = ["basic_authorization", "url_credentials"]


def basic_authorization(user: str | bytes, password: str | bytes) -> str:
    """The ``Authorization`` value for HTTP Basic (RFC 7617): ``user:password`` in UTF-8, base64."""
    raw_user = user.encode() if isinstance(user, str) else user
    raw_password = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(raw_user + b":" + raw_password).decode("ascii")


def url_credentials(url: str) -> tuple[str, str] | None:
    """The percent-decoded ``(user, password)`` of a URL's userinfo, or None when it has none."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    return urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
