"""Which proxy, if any, a request goes through: ``HTTP(S)_PROXY`` and ``NO_PROXY``.

Plain http requests are sent to an HTTP proxy with the absolute URL as the
target; https requests ask the proxy for a ``CONNECT`` tunnel and speak TLS
with the origin through it (``_client._tunnel``).

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

from ._url import URL, parse_url

__all__ = ["Proxy", "ProxyConfig", "proxy_for"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy to go through: where it is, and the ``Proxy-Authorization`` its URL's credentials call for."""

    url: URL
    authorization: str | None = None

    def __repr__(self) -> str:  # never show the credentials
        return f"Proxy({str(self.url)!r}{', with credentials' if self.authorization else ''})"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Proxies by scheme, and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_setting(cls, setting: str | Mapping[str, str] | None) -> ProxyConfig:
        """``"env"``: read the environment (as urllib does); a mapping; or None for no proxy."""
        if setting is None:
            return cls()
        if setting == "env":
            setting = urllib.request.getproxies()
        if not isinstance(setting, Mapping):
            raise TypeError(f"proxies must be 'env', a mapping or None, not {setting!r}")
        no = tuple(h.strip().lower() for h in setting.get("no", "").split(",") if h.strip())
        return cls(_proxy_url(setting.get("http")), _proxy_url(setting.get("https")), no)


def _proxy_url(value: str | None) -> Proxy | None:
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value
    parts = urllib.parse.urlsplit(value)
    authorization = None
    if parts.username is not None:
        credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Proxy(parse_url(value), authorization)


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
