"""Fixtures of the networking tests: TLS material and the leak check every test gets."""

from __future__ import annotations

import datetime
import gc
import pathlib
import ssl
from collections.abc import Iterator

import pytest
import trustme

import tasklets
from tasklets._where import default_executor

from ._support import TLSMaterial, leftovers, open_fds, remove_tmpdirs


@pytest.fixture(scope="session", autouse=True)
def _runtime_started() -> None:
    # The default loop and thread pool open descriptors on first use; start
    # them before any test measures its own.
    tasklets.default_loop()
    default_executor().submit(lambda: None).result()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves a descriptor, task, timer or reader/writer registration behind.

    Tests run their loop with ``_support.run``, which checks its own loop; this
    fixture checks the process's descriptors and the default background loop.
    """
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    remove_tmpdirs()
    after = open_fds()
    leaked = {fd: target for fd, target in after.items() if fd not in before}
    assert not leaked, f"the test leaked descriptors: {leaked!r}"
    loop = tasklets.default_loop()
    inspected: tasklets.Future[list[str]] = tasklets.Future()
    loop.call_soon_threadsafe(lambda: inspected.set_result(leftovers(loop)))  # on its own thread: a consistent view
    left = inspected.result(10)
    assert not left, "the test left behind on the default loop: " + "; ".join(left)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls(ca: trustme.CA) -> TLSMaterial:
    """A server certificate for localhost/127.0.0.1 and a client that trusts its CA."""
    server_context = _server_context(ca.issue_cert("localhost", "127.0.0.1"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return TLSMaterial(ca, server_context, client_context)


@pytest.fixture(scope="session")
def expired_server_context(ca: trustme.CA) -> ssl.SSLContext:
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert(
        "localhost", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    return _server_context(cert)


@pytest.fixture(scope="session")
def other_host_server_context(ca: trustme.CA) -> ssl.SSLContext:
    return _server_context(ca.issue_cert("other.example"))


@pytest.fixture(scope="session")
def untrusted_server_context() -> ssl.SSLContext:
    return _server_context(trustme.CA().issue_cert("localhost", "127.0.0.1"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the ``slow`` load tests only when asked for (``-m slow``); the default run is bounded."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    here = pathlib.Path(__file__).parent
    skip = pytest.mark.skip(reason="slow: select it with -m slow")
    for item in items:
        if "slow" in item.keywords and here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(skip)
