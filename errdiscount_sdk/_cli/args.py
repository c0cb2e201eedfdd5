"""Argument plumbing shared by the commands: one-line usage errors, checked numbers.

A usage error is exit 2 and exactly one line on stderr (``errdiscount: error: ...``),
never a traceback and never the usage block, so scripts can show it as is. Output to a
closed pipe (``errdiscount verify ... | head -1``) ends quietly (`quiet_broken_pipe`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["EXIT_USAGE", "OneLineParser", "bounded_int", "positive_seconds", "quiet_broken_pipe"]

EXIT_USAGE = 2
#: a per-attempt timeout longer than this is a typo (an hour)
MAX_TIMEOUT_SECONDS = 3600.0


class OneLineParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose usage errors are one line (sub-parsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        print(f"errdiscount: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def positive_seconds(text: str) -> float:
    """A finite number of seconds, > 0 and at most an hour (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds"
        )
    return value


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} must be from {low} to {high}")
        return value

    return parse


def quiet_broken_pipe() -> None:
    """The reader of stdout went away: send the rest of our output nowhere.

    As the Python docs recommend for SIGPIPE: point stdout at /dev/null so the
    interpreter's final flush does not raise (and print) a second BrokenPipeError.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
