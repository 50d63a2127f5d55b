"""The ``tasklets`` command: ``tasklets fetch`` and ``tasklets demo``.

Exit status: 0 when everything succeeded, 1 when some URL failed, 2 on bad
usage, 130 when interrupted with Ctrl-C (after the summary is printed).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import re
import ssl
import sys
import urllib.parse
from collections.abc import Sequence

from .._exceptions import LocalProtocolError
from .._runtime import run
from ..http import Headers, check_request
from ..http._proxy import PROXY_SCHEMES
from ._dask_fetch import DaskTarget, DaskUnavailable, parse_dask_target, run_dask_fetch
from ._demo import run_demo
from ._fetch import DEFAULT_PER_HOST, FetchOptions, fetch_all
from ._report import Summary, make_reporter
from ._source import UrlSource, count_urls, stdin_or_file

__all__ = ["main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', got {text!r}")
    if not _TOKEN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"bad header name {name!r}: letters, digits and -!#$%&'*+.^_`|~ only")
    try:  # the client's own check, or it would refuse the header at every request: each URL failed
        check_request("GET", Headers([(name, value)]))
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(f"bad header {text!r}: {exc}") from None
    return name, value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value < math.inf:  # refuses nan too
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of requests per second, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


_SIZE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"must be a size in bytes (or with K, M, G: 500K, 20M), got {text!r}")
    unit = 1024 ** ("kmg".find(match[2].lower()) + 1) if match[2] else 1
    return int(match[1]) * unit


def _statuses(text: str) -> frozenset[int]:
    statuses = set()
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit() and 100 <= int(part) <= 599):
            raise argparse.ArgumentTypeError(f"must be HTTP statuses separated by commas (429,503), got {part!r}")
        statuses.add(int(part))
    return frozenset(statuses)


def _backoff(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _proxy_problem(url: str) -> str | None:
    """Why the client cannot use ``url`` as a proxy, or None (it would fail every request, one by one)."""
    try:
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in PROXY_SCHEMES:
        return f"the proxy schemes supported are {', '.join(f'{name}://' for name in PROXY_SCHEMES)}"
    if not parts.hostname:
        return "no host"
    return None


def _dask_target(text: str) -> DaskTarget:
    try:
        return parse_dask_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasklets", description="Asynchronous I/O where the concurrent.futures.Future is the one currency."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = commands.add_parser(
        "fetch",
        help="fetch many URLs concurrently, reporting each as it completes",
        description="Fetch many URLs concurrently and report each the moment it completes.",
    )
    fetch.add_argument("urls", nargs="*", metavar="URL", help="URLs to fetch")
    fetch.add_argument("-i", "--input", metavar="FILE", help="read more URLs from FILE, one per line ('-': stdin)")
    limits = fetch.add_argument_group("concurrency and politeness")
    limits.add_argument("-c", "--concurrency", type=_positive, default=64, metavar="N", help="at most N at once (64)")
    limits.add_argument(
        "--per-host",
        type=_positive,
        default=DEFAULT_PER_HOST,
        metavar="N",
        help=f"at most N connections to one host ({DEFAULT_PER_HOST})",
    )
    limits.add_argument("--rate", type=_rate, metavar="R", help="start at most R requests a second")
    limits.add_argument("--rate-per-host", type=_rate, metavar="R", help="start at most R requests a second per host")
    limits.add_argument("--timeout", type=_seconds, default=30.0, metavar="S", help="connect and read timeout (30)")
    retries = fetch.add_argument_group("retries")
    retries.add_argument(
        "--retries", type=int, default=0, metavar="K", help="retry a network failure or a busy status up to K times (0)"
    )
    retries.add_argument(
        "--retry-on",
        type=_statuses,
        metavar="CODES",
        help="the statuses to retry, separated by commas (429,502,503,504)",
    )
    retries.add_argument(
        "--retry-backoff",
        type=_backoff,
        default=0.5,
        metavar="S",
        help="the first wait before a retry, doubling after (0.5); Retry-After overrides it",
    )
    files = fetch.add_argument_group("saving")
    files.add_argument("-o", "--output", metavar="DIR", help="save each body to a file in DIR (created if missing)")
    files.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="with -o: keep partial files, and resume them with Range next time",
    )
    files.add_argument("--no-clobber", action="store_true", help="with -o: skip the URLs whose file is there already")
    files.add_argument(
        "--max-size", type=_size, metavar="BYTES", help="fail a URL whose body is larger (500K, 20M...), saving nothing"
    )
    requests = fetch.add_argument_group("requests")
    requests.add_argument(
        "-H", "--header", type=_header, action="append", default=[], metavar="'Name: value'", help="send a header"
    )
    requests.add_argument("-A", "--user-agent", metavar="UA", help="send User-Agent: UA")
    requests.add_argument("--proxy", metavar="URL", help="send every request through this proxy")
    requests.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE (PEM)")
    requests.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify TLS certificates (a warning is printed)"
    )
    output = fetch.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="one JSON object per URL (summary on stderr)")
    output.add_argument("-q", "--quiet", action="store_true", help="print only the failures and the summary")
    progress = output.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="force the progress line on stderr"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress line")
    fetch.add_argument(
        "--dask",
        type=_dask_target,
        metavar="ADDRESS",
        help="shard the URLs across a Dask cluster: a scheduler address, or local:N for N local worker processes",
    )
    fetch.set_defaults(parser=fetch)  # usage errors found later name 'tasklets fetch'

    commands.add_parser(
        "demo",
        help="load local pages of varied sizes and delays, with tasklets and with a thread pool",
        description="Serve pages on 127.0.0.1 and load them the seed's way; compare with a thread pool.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(argv)
    if args.command == "fetch":  # options may come after URLs, as with curl and wget
        args = args.parser.parse_intermixed_args(argv[argv.index("fetch") + 1 :])
        args.command = "fetch"
    elif unknown:  # named by the subcommand's usage, not the top level's
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    _escape_what_stdout_cannot_encode()
    if args.command == "demo":
        try:
            return run_demo(sys.stdout)
        except BrokenPipeError:  # the reader stopped listening (``tasklets demo | head``): stop quietly
            _discard_stdout()
            # The pages still loading were abandoned with the output: their outcomes are no news
            # (the loop would log a failed page nobody read, when it is collected).
            logging.getLogger("tasklets").disabled = True
            return 1
    return _fetch(args.parser, args)


def _fetch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.urls and args.input is None:
        parser.error("give URLs, or -i FILE (or -i - for stdin)")
    if args.retries < 0:
        parser.error("--retries must be 0 or more")
    if args.output is None and (args.resume or args.no_clobber):
        parser.error(f"{'--continue' if args.resume else '--no-clobber'} needs -o DIR")
    if args.dask is not None:
        if importlib.util.find_spec("distributed") is None:
            parser.error("--dask needs Dask's distributed: pip install 'tasklets[dask]'")
        if args.rate is not None or args.rate_per_host is not None:
            parser.error("--rate and --rate-per-host pace one process: they do not apply with --dask")
    if args.proxy is not None:
        why = _proxy_problem(args.proxy)
        if why is not None:
            parser.error(f"--proxy {args.proxy!r}: {why}")
    if args.cacert is not None and args.insecure:
        parser.error("--cacert and --insecure contradict each other: verify with FILE, or do not verify")
    headers = list(args.header)
    if args.user_agent is not None:
        try:
            headers.append(_header(f"User-Agent: {args.user_agent}"))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"-A/--user-agent: {exc}")
    options = FetchOptions(
        concurrency=args.concurrency,
        timeout=args.timeout,
        output_dir=args.output,
        retries=args.retries,
        retry_on=args.retry_on,
        retry_backoff=args.retry_backoff,
        headers=headers,
        per_host=args.per_host,
        rate=args.rate,
        rate_per_host=args.rate_per_host,
        max_size=args.max_size,
        proxy=args.proxy,
        cacert=args.cacert,
        insecure=args.insecure,
        resume=args.resume,
        no_clobber=args.no_clobber,
    )
    try:  # what the client would refuse at every request (a bad proxy, an unreadable CA file) is bad usage
        options.client().close()
    except (OSError, ValueError, ssl.SSLError) as exc:
        if args.cacert is not None and not isinstance(exc, ValueError):
            which = "--cacert"
        else:
            which = "--proxy" if args.proxy is not None else "the proxy settings of the environment"
        parser.error(f"{which}: {getattr(exc, 'strerror', None) or exc}")
    created = False
    if args.output is not None and not os.path.isdir(args.output):
        try:
            os.makedirs(args.output)
        except OSError as exc:
            parser.error(f"-o {args.output!r}: cannot create the directory: {exc.strerror or exc}")
        created = True
    try:
        input_file = stdin_or_file(args.input)
    except OSError as exc:
        parser.error(f"-i {args.input!r}: {exc.strerror or exc}")
    summary = Summary()
    reporter = make_reporter(summary, as_json=args.json, progress=args.progress, quiet=args.quiet)
    if created:
        reporter.message(f"created the directory {args.output!r}")
    if args.insecure:
        reporter.message("warning: --insecure: certificates are not verified; anyone on the way can read and change")
    if reporter.progress is not None and args.input is not None:
        count_urls(args.input, len(args.urls), reporter.set_total)
    elif not args.input:
        summary.total = len(args.urls)
    source = UrlSource(args.urls, input_file, close_input=input_file is not sys.stdin)
    try:
        if args.dask is None:
            status: int = run(fetch_all, source, options, reporter)
        else:
            status = run_dask_fetch(args.dask, source, options, reporter)
    except DaskUnavailable as exc:
        reporter.message(str(exc))
        status = EXIT_FAILURES
    except KeyboardInterrupt:
        summary.interrupted = True
        status = EXIT_INTERRUPTED
    finally:
        source.close()
    reporter.finish()
    if reporter.output_closed:  # a closed pipe, a full disk: no error at exit when Python flushes stdout
        _discard_stdout()
        status = max(status, EXIT_FAILURES)
    if reporter.output_error is not None:
        error = reporter.output_error
        print(f"tasklets fetch: writing the results failed: {error.strerror or error}", file=sys.stderr)
    if source.error is not None:
        print(f"tasklets fetch: reading {args.input!r} failed: {source.error}", file=sys.stderr)
        status = max(status, EXIT_FAILURES)
    return status


def _escape_what_stdout_cannot_encode() -> None:
    """Write what stdout's encoding lacks as backslash escapes.

    A non-ASCII URL on an ASCII stdout (``PYTHONIOENCODING=ascii``, the C
    locale, a legacy code page) would otherwise raise UnicodeEncodeError in
    the middle of the run: its line lost, the run ended by a traceback.
    """
    reconfigure = getattr(sys.stdout, "reconfigure", None)  # a TextIOWrapper's; absent on a stand-in
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    """Point stdout at /dev/null: what its buffer still holds cannot raise again when Python flushes it at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def console_main() -> None:
    """The ``tasklets`` console script."""
    sys.exit(main())
