"""Which proxy, if any, a request goes through: ``HTTP(S)_PROXY`` and ``NO_PROXY``.

Plain http requests are sent to an HTTP proxy with the absolute URL as the
target; https requests ask the proxy for a ``CONNECT`` tunnel and speak TLS
with the origin through it (``_client._tunnel``).
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from ._url import URL, parse_url

__all__ = ["ProxyConfig", "proxy_for"]


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Proxy URLs by scheme, and the hosts that bypass them."""

    http: URL | None = None
    https: URL | None = None
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


def _proxy_url(value: str | None) -> URL | None:
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value
    return parse_url(value)


def proxy_for(config: ProxyConfig, url: URL) -> URL | None:
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
