"""Which proxy, if any, a request goes through: ``HTTP(S)_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``.

Plain http requests are sent to an HTTP proxy with the absolute URL as the
target; https requests ask the proxy for a ``CONNECT`` tunnel and speak TLS
with the origin through it (``_client._tunnel``). An ``https://`` proxy is
reached over TLS. A SOCKS proxy (``socks4``, ``socks4a``, ``socks5``,
``socks5h``: ``_socks``) is asked for a connection to the origin, over which
the request goes as if direct.

Credentials in a proxy URL (``http://user:pass@proxy:3128``) become a
``Proxy-Authorization: Basic`` header, as urllib's ``ProxyHandler`` makes
them: on every request forwarded to the proxy, and on the ``CONNECT`` of a
tunnel only (never inside it, where the origin would see it).
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from ._url import URL, Origin, parse_url

__all__ = ["PROXY_SCHEMES", "Proxy", "ProxyConfig", "proxy_for"]


#: Proxy URL schemes, and their default ports.
PROXY_SCHEMES = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy to go through: its scheme and address, and the credentials of its URL.

    ``authorization`` is the ``Proxy-Authorization`` an HTTP proxy's
    credentials call for; a SOCKS proxy takes ``username`` and ``password``.
    ``error`` says why the proxy cannot be used (an unsupported scheme, a bad
    URL): the requests that would go through it fail with it, nothing else.
    """

    scheme: str
    host: str
    port: int
    authorization: str | None = None
    username: str | None = None
    password: str | None = None
    error: str | None = None

    @property
    def url(self) -> URL:
        """Where the proxy is, as the URL of an HTTP proxy (SOCKS ones keep their scheme)."""
        return URL(Origin(self.scheme, self.host, self.port), "/")

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    def __repr__(self) -> str:  # never show the credentials
        credentials = ", with credentials" if self.username is not None else ""
        return f"Proxy('{self.scheme}://{self.host}:{self.port}'{credentials})"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Proxies by scheme, and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_setting(cls, setting: str | Mapping[str, str] | None) -> ProxyConfig:
        """``"env"``: read the environment (as urllib does); a mapping; or None for no proxy.

        ``ALL_PROXY`` (the mapping's ``"all"``) serves the schemes that have no
        proxy of their own. A proxy URL that cannot be used does not fail here:
        it fails the requests that would go through it.
        """
        if setting is None:
            return cls()
        if setting == "env":
            setting = urllib.request.getproxies()
        if not isinstance(setting, Mapping):
            raise TypeError(f"proxies must be 'env', a mapping or None, not {setting!r}")
        no = tuple(h.strip().lower() for h in setting.get("no", "").split(",") if h.strip())
        fallback = setting.get("all")
        return cls(_proxy_url(setting.get("http") or fallback), _proxy_url(setting.get("https") or fallback), no)


def _proxy_url(value: str | None) -> Proxy | None:
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value
    try:
        parts = urllib.parse.urlsplit(value)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        return Proxy("invalid", "", 0, error=f"the proxy URL {_redacted(value)!r} is invalid: {exc}")
    if scheme not in PROXY_SCHEMES:
        supported = ", ".join(f"{name}://" for name in PROXY_SCHEMES)
        return Proxy(scheme, host, port or 0, error=f"unsupported proxy {_redacted(value)!r}: the proxy schemes "
                     f"supported are {supported}")
    if not host:
        return Proxy(scheme, host, 0, error=f"the proxy URL {_redacted(value)!r} has no host")
    host = parse_url(f"http://{parts.netloc.rpartition('@')[2]}/").origin.host  # validated, IDNA-encoded
    username = password = authorization = None
    if parts.username is not None:
        username, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
        if not scheme.startswith("socks"):
            credentials = f"{username}:{password}"
            authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Proxy(scheme, host, port or PROXY_SCHEMES[scheme], authorization, username, password)


def _redacted(url: str) -> str:
    """``url`` with its password hidden."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, userinfo = head.rpartition("://")
    return f"{scheme}://{userinfo.split(':')[0]}:***@{tail}" if ":" in userinfo else url


def proxy_for(config: ProxyConfig, url: URL) -> Proxy | None:
    """The proxy for ``url``, or None to connect directly."""
    proxy = config.https if url.origin.scheme == "https" else config.http
    if proxy is None or _bypassed(config.no_proxy, url.origin.host):
        return None
    return proxy


def _bypassed(no_proxy: tuple[str, ...], host: str) -> bool:
    for entry in no_proxy:
        if entry == "*":
            return True
        name = entry.split(":")[0].lstrip(".")
        if host == name or host.endswith("." + name):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
        except ValueError:
            pass
    return False
