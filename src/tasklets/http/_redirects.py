"""What to request next after a redirect: a pure function of the request and the response.

The rules (RFC 9110 §15.4, and what browsers and urllib do):

* 301 and 302 turn every method but HEAD into GET, dropping the body (the
  RFC allows it, everybody does it); 303 always does; 307 and 308 keep the
  method and the body, which must then be replayable (bytes, not a stream).
* A redirect may go to http or https only: ``file://`` and friends are refused.
* When the origin (scheme, host, port) changes, credentials stay behind:
  ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` are dropped.
* Headers the caller marked as not for redirects (urllib's
  ``add_unredirected_header``) are dropped on every hop.
* At most ``max_redirects`` hops; a URL seen twice is reported as a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._exceptions import InvalidURL, TooManyRedirects, UnsupportedRedirect, UnsupportedScheme
from ._headers import Headers
from ._url import URL, parse_url

__all__ = ["REDIRECT_STATUSES", "Hop", "next_hop"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding", "Content-Encoding")


@dataclass(frozen=True, slots=True)
class Hop:
    """The request to make after a redirect."""

    method: str
    url: URL
    headers: Headers
    body: Any


def next_hop(
    *,
    method: str,
    url: URL,
    headers: Headers,
    body: Any,
    body_replayable: bool,
    status: int,
    location: str | None,
    visited: list[str],
    max_redirects: int,
    unredirected: tuple[str, ...] = (),
) -> Hop | None:
    """The next request after a ``status`` response, or None if it is not a redirect to follow.

    Args:
        method, url, headers, body: the request that got the redirect.
        body_replayable: whether ``body`` can be sent again (bytes or None).
        status: the response status.
        location: its ``Location`` header, if any.
        visited: URLs requested so far in this chain (this one included).
        max_redirects: how many hops to allow.
        unredirected: names of headers not to send on (urllib's
            ``Request.add_unredirected_header``): dropped from the next hop.

    Raises:
        TooManyRedirects: past ``max_redirects``, or a URL visited twice.
        UnsupportedRedirect: a redirect to a non-HTTP scheme, or a 307/308
            that would have to resend a streamed body.
        InvalidURL: a ``Location`` that is not a valid URL.
    """
    if status not in REDIRECT_STATUSES or not location:
        return None
    try:
        target_text = url.join(location)
        target = parse_url(target_text)
    except UnsupportedScheme as exc:
        message = f"refused to follow the redirect from {str(url)!r} to {target_text!r}: {exc}"
        raise UnsupportedRedirect(message) from exc
    except ValueError as exc:  # urljoin's own (an unclosed IPv6 bracket, say) as well as parse_url's
        raise InvalidURL(f"cannot follow the redirect from {str(url)!r} to {location!r}: {exc}") from exc
    if len(visited) > max_redirects:
        raise TooManyRedirects(f"more than {max_redirects} redirects, the last from {str(url)!r} to {str(target)!r}")
    if str(target) in visited:
        raise TooManyRedirects(f"redirect loop: {str(url)!r} redirects back to {str(target)!r}")

    new_headers = headers.copy()
    for name in unredirected:
        new_headers.remove(name)
    new_body = body
    new_method = method
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method not in ("GET", "HEAD")):
        new_method, new_body = "GET", None
        for name in _BODY_HEADERS:
            new_headers.remove(name)
    elif body is not None and not body_replayable:
        raise UnsupportedRedirect(
            f"cannot follow the {status} redirect from {str(url)!r}: it must resend the request body, "
            "which was a stream and is consumed; pass the body as bytes to allow this"
        )
    if target.origin != url.origin:
        for name in _CREDENTIAL_HEADERS:
            new_headers.remove(name)
        new_headers.remove("Host")
    return Hop(new_method, target, new_headers, new_body)
