"""The ``errdiscount`` command line. Exit codes: 0 ok, 1 the operation failed
(e.g. a token did not verify, or stdout was closed early: ``| head``), 2 usage error
(one line on stderr, never a traceback). Token commands: `tokens`; ``redeem``: `redeem`;
``report`` (analytics): `report`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from .._version import __version__
from .args import OneLineParser, quiet_broken_pipe
from .backtest import add_backtest_command
from .redeem import add_redeem_command
from .report import add_report_command
from .tokens import add_token_commands

__all__ = ["main"]


#: longer than this is not a broker URL (nor an exchange name: AMQP's short string)
MAX_AMQP_URL = 2048
MAX_EXCHANGE_NAME = 255


def _amqp_url(text: str) -> str:
    """An argparse ``type=``: ``amqp[s]://[user:password@]host[:port][/vhost]``.

    The URL may hold a password: the error never repeats it.
    """
    if len(text) > MAX_AMQP_URL:
        raise argparse.ArgumentTypeError(f"the URL is longer than {MAX_AMQP_URL} characters")
    if not text.startswith(("amqp://", "amqps://")):
        raise argparse.ArgumentTypeError("the URL must start with amqp:// or amqps://")
    try:
        parts = urlsplit(text)
        usable = bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number, a broken [IPv6] host
        usable = False
    if not usable:
        raise argparse.ArgumentTypeError("the URL needs a host, and a port from 1 to 65535")
    return text


def _exchange_name(text: str) -> str:
    """An argparse ``type=``: 1 to 255 printable ASCII characters, as the server accepts."""
    if not 0 < len(text) <= MAX_EXCHANGE_NAME or any(not ("!" <= c <= "~") for c in text):
        raise argparse.ArgumentTypeError("an exchange name is 1 to 255 printable ASCII characters")
    return text


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(amqp_url=args.amqp_url, amqp_exchange=args.amqp_exchange)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="errdiscount",
        description="API error discounts: classify API errors, issue, verify and redeem "
        "compensation vouchers.",
    )
    parser.add_argument("--version", action="version", version=f"errdiscount {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo = commands.add_parser("demo", help="run a guided tour of the whole loop locally")
    demo.add_argument(
        "--amqp-url",
        type=_amqp_url,
        metavar="URL",
        help="also publish the events to this RabbitMQ broker and show a queue receiving them",
    )
    demo.add_argument(
        "--amqp-exchange",
        type=_exchange_name,
        metavar="NAME",
        help="the topic exchange to use (default: a fresh errdiscount-demo-<random>, "
        "deleted at the end; a named one is kept)",
    )
    demo.set_defaults(handler=_cmd_demo)
    add_token_commands(commands)
    add_redeem_command(commands)
    add_backtest_command(commands)
    add_report_command(commands)
    return parser


#: stdout was closed before we were done writing (``errdiscount ... | head``)
EXIT_BROKEN_PIPE = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and args.amqp_exchange is not None and args.amqp_url is None:
        parser.error("demo: --amqp-exchange needs --amqp-url")
    handler = args.handler
    try:
        result: int = handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not at exit
    except BrokenPipeError:
        quiet_broken_pipe()
        return EXIT_BROKEN_PIPE
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
