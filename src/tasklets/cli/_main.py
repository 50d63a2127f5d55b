"""The ``tasklets`` command: ``tasklets fetch`` and ``tasklets demo``.

Exit status: 0 when everything succeeded, 1 when some URL failed, 2 on bad
usage, 130 when interrupted with Ctrl-C (after the summary is printed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._runtime import run
from ._fetch import FetchOptions, fetch_all, read_urls, stdin_or_file
from ._report import Summary, make_reporter

__all__ = ["main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


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
    fetch.add_argument("-c", "--concurrency", type=_positive, default=64, metavar="N", help="at most N at once (64)")
    fetch.add_argument("--timeout", type=_seconds, default=30.0, metavar="S", help="connect and read timeout (30)")
    fetch.add_argument("-o", "--output", metavar="DIR", help="save each body to a file in DIR")
    fetch.add_argument("--json", action="store_true", help="one JSON object per URL (summary on stderr)")
    fetch.add_argument("--retries", type=int, default=0, metavar="K", help="retry failures up to K times (0)")
    fetch.add_argument(
        "-H", "--header", type=_header, action="append", default=[], metavar="'Name: value'", help="send a header"
    )
    progress = fetch.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None, help="force the bar")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    commands.add_parser(
        "demo",
        help="load local pages of varied sizes and delays, with tasklets and with a thread pool",
        description="Serve pages on 127.0.0.1 and load them the seed's way; compare with a thread pool.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(sys.stdout)
    return _fetch(parser, args)


def _fetch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.urls and args.input is None:
        parser.error("give URLs, or -i FILE (or -i - for stdin)")
    if args.retries < 0:
        parser.error("--retries must be 0 or more")
    if args.output is not None:
        import os

        if not os.path.isdir(args.output):
            parser.error(f"-o {args.output!r}: not a directory")
    try:
        input_file = stdin_or_file(args.input)
    except OSError as exc:
        parser.error(f"-i {args.input!r}: {exc.strerror or exc}")
    options = FetchOptions(
        concurrency=args.concurrency,
        timeout=args.timeout,
        output_dir=args.output,
        retries=args.retries,
        headers=args.header,
    )
    summary = Summary()
    reporter = make_reporter(summary, as_json=args.json, progress=args.progress)
    try:
        status = run(fetch_all, read_urls(args.urls, input_file), options, reporter)
    except KeyboardInterrupt:
        summary.interrupted = True
        status = EXIT_INTERRUPTED
    finally:
        if input_file is not None and input_file is not sys.stdin:
            input_file.close()
    reporter.finish()
    return status


def console_main() -> None:
    """The ``tasklets`` console script."""
    sys.exit(main())
