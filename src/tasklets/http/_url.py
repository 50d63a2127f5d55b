"""URLs as the client sends them: validated, IDNA-encoded, split into origin and target.

Everything a hostile or careless URL could smuggle into a request line or a
``Host`` header is refused here, before a byte is sent: control characters
and spaces (CR/LF injection), schemes other than http and https, hosts that are
not valid IDNA, ports out of range.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from .._exceptions import InvalidURL, UnsupportedScheme

__all__ = ["Origin", "URL", "parse_url", "DEFAULT_PORTS"]

DEFAULT_PORTS = {"http": 80, "https": 443}

# Control characters, space and DEL: never valid in a URL we send.
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
# What a registered name may hold once IDNA-encoded.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9\-_]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
# Characters left as they are when percent-encoding a path or query.
_SAFE_IN_TARGET = "/%:@!$&'()*+,;=~-._?"
# A path or query made only of those and of what ``quote`` never encodes: ``quote`` would return it as it is.
_NOTHING_TO_QUOTE = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=~\-._?]*")


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port: what a pooled connection is keyed on."""

    scheme: str
    host: str  # ASCII: IDNA-encoded name, or an IP address (IPv6 without brackets)
    port: int

    @property
    def authority(self) -> str:
        """The ``Host`` header value: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}"


@dataclass(frozen=True, slots=True)
class URL:
    """A URL ready to request: its origin and the request target (path and query)."""

    origin: Origin
    target: str

    def __str__(self) -> str:
        return f"{self.origin}{self.target}"

    def join(self, reference: str) -> str:
        """Resolve ``reference`` (a ``Location`` header, say) against this URL."""
        return urllib.parse.urljoin(str(self), reference)


@functools.lru_cache(maxsize=4096)
def parse_url(url: str) -> URL:
    """Validate ``url`` and split it into origin and request target.

    Userinfo (``user:pass@``) is dropped and so is the fragment: neither is
    ever sent to the server.

    Raises:
        InvalidURL: a control character or space, a lone surrogate, no host, a host that is
            not valid IDNA, or a bad port.
        UnsupportedScheme: a scheme other than http or https.
    """
    if not isinstance(url, str):
        raise InvalidURL(f"a URL must be a string, got {url!r}")
    unsafe = _UNSAFE.search(url)
    if unsafe is not None:
        raise InvalidURL(
            f"URL {url!r} contains {unsafe.group()!r} at position {unsafe.start()}: control characters "
            "and spaces are refused (they could inject headers); percent-encode them"
        )
    if not url.isascii():
        try:
            url.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidURL(
                f"URL {url!r} contains {url[exc.start]!r} at position {exc.start}: a lone surrogate is not a "
                "character and cannot be sent (was the URL decoded with errors='surrogateescape'?)"
            ) from exc
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"cannot parse URL {url!r}: {exc}") from exc
    origin = _origin(parts, url)
    target = _quote(parts.path or "/")
    if parts.query:
        target += "?" + _quote(parts.query)
    if not target.startswith("/"):
        target = "/" + target
    return URL(origin, target)


def _quote(text: str) -> str:
    if _NOTHING_TO_QUOTE.fullmatch(text):
        return text
    return urllib.parse.quote(text, safe=_SAFE_IN_TARGET)


def _origin(parts: urllib.parse.SplitResult, url: str) -> Origin:
    """The origin of ``url``: one per scheme and authority (URLs of one host differ in their paths)."""
    try:
        return _ORIGINS[parts.scheme, parts.netloc]
    except KeyError:
        pass
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsupportedScheme(
            f"cannot fetch {url!r}: only http and https URLs are supported, not {scheme or 'a URL without scheme'!r}"
        )
    host = _encode_host(parts.hostname, url)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"bad port in URL {url!r}: {exc}") from exc
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise InvalidURL(f"bad port in URL {url!r}: 0")
    origin = Origin(scheme, host, port)
    if len(_ORIGINS) >= _ORIGINS_KEPT:
        _ORIGINS.clear()  # a crawl over many hosts: bounded, and safe while other threads read it
    _ORIGINS[parts.scheme, parts.netloc] = origin
    return origin


#: Origins by (scheme, netloc) as written, at most ``_ORIGINS_KEPT`` (only valid ones: errors are not kept).
_ORIGINS: dict[tuple[str, str], Origin] = {}
_ORIGINS_KEPT = 4096


def _encode_host(hostname: str | None, url: str) -> str:
    if not hostname:
        raise InvalidURL(f"URL {url!r} has no host")
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        encoded = hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL(f"URL {url!r} has an invalid host {hostname!r}: {exc}") from exc
    if not _HOST_NAME.match(encoded):
        raise InvalidURL(f"URL {url!r} has an invalid host {hostname!r}")
    return encoded.lower()
