"""The ``errdiscount`` command line. Exit codes: 0 ok, 1 the operation failed
(e.g. a token did not verify, or stdout was closed early: ``| head``), 2 usage error
(one line on stderr, never a traceback). Token commands: `tokens`; ``redeem``: `redeem`;
``report`` (analytics): `report`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from .args import OneLineParser, quiet_broken_pipe
from .backtest import add_backtest_command
from .redeem import add_redeem_command
from .report import add_report_command
from .tokens import add_token_commands

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


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
