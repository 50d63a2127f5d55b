"""Credentials: Basic (from ``auth=``, a URL's ``user:pass@`` or ``~/.netrc``) and Digest (RFC 7616).

Which hops get them is the session's business (``_session.Chain``): only
those to the origin of the first request; ``next_hop`` drops an
``Authorization`` header on a redirect to any other origin, https to http
included.
"""

from __future__ import annotations

import base64
import hashlib
import netrc
import os
import re
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from .._exceptions import AuthenticationError

__all__ = ["DigestAuth", "basic_authorization", "netrc_credentials", "parse_challenge", "url_credentials"]


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


def netrc_credentials(host: str) -> tuple[str, str] | None:
    """The login and password ``~/.netrc`` (or the file ``NETRC`` names) gives for ``host``, if any."""
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not os.path.exists(path):
        return None
    try:
        found = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None  # an unreadable or malformed file: as if there were none (as requests and curl do)
    if found is None:
        return None
    login, _, password = found
    return login, password or ""


# -- Digest (RFC 7616) -----------------------------------------------------------------------------------------

def _sha512_256(data: bytes) -> Any:
    return hashlib.new("sha512_256", data)


_HASHES: dict[str, Callable[[bytes], Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-512-256": _sha512_256}


class DigestAuth:
    """HTTP Digest authentication (RFC 7616): MD5 and SHA-256 (and their ``-sess``), ``qop=auth``.

    The first request goes without credentials; a 401 with a Digest challenge
    is answered once (a second 401 is the outcome). Later requests to the same
    origin answer the known challenge at once, counting the nonce's uses.

    Args:
        username: the user name.
        password: the password.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._lock = threading.Lock()
        self._challenge: dict[str, str] | None = None
        self._origin: object = None
        self._nonce_count = 0

    def __repr__(self) -> str:
        return f"DigestAuth({self.username!r}, ...)"

    def remember(self, origin: object, challenge: str, where: str) -> None:
        """Take the ``WWW-Authenticate`` Digest challenge of ``origin``.

        Raises:
            AuthenticationError: not a Digest challenge we can answer (an
                unknown algorithm, a ``qop`` other than ``auth``); naming ``where``.
        """
        params = parse_challenge(challenge, "digest")
        if params is None:
            raise AuthenticationError(f"{where} asked for {challenge!r}, not a Digest challenge")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm.removesuffix("-SESS") not in _HASHES:
            raise AuthenticationError(
                f"{where} asked for Digest with algorithm {algorithm!r}: supported are "
                "MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256"
            )
        qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            raise AuthenticationError(f"{where} asked for Digest with qop={params['qop']!r}: only 'auth' is supported")
        if "nonce" not in params or "realm" not in params:
            raise AuthenticationError(f"{where} sent a Digest challenge without nonce or realm: {challenge!r}")
        with self._lock:
            if self._challenge is None or self._challenge.get("nonce") != params["nonce"]:
                self._nonce_count = 0
            self._challenge, self._origin = params, origin

    def authorization(self, origin: object, method: str, target: str, *, cnonce: str | None = None) -> str | None:
        """The ``Authorization`` value for a request, once ``origin`` has sent a challenge; else None.

        ``cnonce``: the client nonce (random unless given: RFC 7616's examples give theirs).
        """
        with self._lock:
            challenge = self._challenge
            if challenge is None or origin != self._origin:
                return None
            self._nonce_count += 1
            count = self._nonce_count
        algorithm = challenge.get("algorithm", "MD5")
        hash_function = _HASHES[algorithm.upper().removesuffix("-SESS")]

        def digest(text: str) -> str:
            return str(hash_function(text.encode("utf-8")).hexdigest())

        nonce, realm = challenge["nonce"], challenge["realm"]
        cnonce = cnonce or os.urandom(8).hex()
        secret = digest(f"{self.username}:{realm}:{self.password}")
        if algorithm.upper().endswith("-SESS"):
            secret = digest(f"{secret}:{nonce}:{cnonce}")
        said = digest(f"{method}:{target}")
        qop = "auth" if "qop" in challenge else None
        nc = f"{count:08x}"
        if qop:
            response = digest(f"{secret}:{nonce}:{nc}:{cnonce}:{qop}:{said}")
        else:
            response = digest(f"{secret}:{nonce}:{said}")
        fields = [
            f'username="{_escape(self.username)}"', f'realm="{_escape(realm)}"', f'nonce="{_escape(nonce)}"',
            f'uri="{_escape(target)}"', f'response="{response}"', f"algorithm={algorithm}",
        ]
        if "opaque" in challenge:
            fields.append(f'opaque="{_escape(challenge["opaque"])}"')
        if qop:
            fields += [f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
        return "Digest " + ", ".join(fields)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def parse_challenge(header: str, scheme: str) -> dict[str, str] | None:
    """The parameters of the ``scheme`` challenge in a ``WWW-Authenticate`` value, or None if there is none."""
    match = re.search(rf"(?:^|,)\s*{scheme}\s+", header, re.IGNORECASE)
    if match is None:
        return None
    params: dict[str, str] = {}
    position = match.end()
    while position < len(header):
        param = _PARAM.match(header, position)
        if param is None or param.end() == position:
            break
        value = param.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        name = param.group(1).lower()
        if name in params:
            break
        params[name] = value
        position = param.end()
    return params
