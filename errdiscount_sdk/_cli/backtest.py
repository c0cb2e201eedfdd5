"""``errdiscount backtest EVENTS.jsonl [--policy FILE] [--json]``: what would have happened.

Replays the events through the detection rules (docs/detection.md) with a virtual
clock. ``--json`` prints one object (episodes, incidents, compensations, cost);
otherwise a readable summary, with a progress bar on stderr for large files when
stderr is a terminal. Skipped lines are reported on stderr. Exit codes: 0 done
(even with skipped lines); 2 a missing or unreadable file, or a bad policy.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .._model.errors import PolicyError
from .._provider.backtest import BacktestResult, run_backtest
from .._provider.detection_types import EpisodeClosed, IncidentClosed
from .._provider.policy import CompensationPolicy

__all__ = ["add_backtest_command"]

_PROGRESS_MIN_BYTES = 8 * 1024 * 1024  # a bar only when the replay takes a while
_BAR = 30


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    yield from handle


def _progress_bar(total: int, stream: IO[str]) -> Callable[[int], None]:
    def show(done: int) -> None:
        filled = min(_BAR, _BAR * done // max(total, 1))
        percent = min(100, 100 * done // max(total, 1))
        stream.write(f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {percent:3d}%")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def _summary(name: str, result: BacktestResult) -> str:
    def when(ts: Any) -> str:
        return "-" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%SZ")

    lines = [
        f"Backtest of {name}: {result.events} call events, "
        f"{when(result.first)} .. {when(result.last)}"
        + (f" ({result.skipped} lines skipped)" if result.skipped else ""),
    ]
    still_open = sum(1 for e in result.episodes if not isinstance(e, EpisodeClosed))
    lines.append(
        f"Episodes: {len(result.episodes)}"
        + (f" ({still_open} still open at the end)" if still_open else "")
    )
    lines.append(f"Incidents: {len(result.incidents)}")
    for incident in result.incidents:
        if isinstance(incident, IncidentClosed):
            lines.append(
                f"  {incident.incident_id} {incident.endpoint}: {when(incident.start)} .. "
                f"{when(incident.end)}, {incident.severity.value}, "
                f"{len(incident.affected_users)} affected users"
            )
        else:
            lines.append(
                f"  {incident.incident_id} {','.join(incident.scope)}: from "
                f"{when(incident.start)}, still open, {incident.affected_users} users so far"
            )
    by_reason: dict[str, int] = {}
    for decided in result.compensations:
        by_reason[decided.reason] = by_reason.get(decided.reason, 0) + 1
    parts = ", ".join(f"{reason} {n}" for reason, n in sorted(by_reason.items()))
    lines.append(f"Compensations: {len(result.compensations)}" + (f" ({parts})" if parts else ""))
    if result.withheld:
        why = ", ".join(f"{n} {reason}" for reason, n in result.withheld.items())
        lines.append(f"Withheld: {why}")
    cost = result.cost()
    if cost:
        lines.append("Cost:")
        for kind, units in cost.items():
            for unit, amount in units.items():
                lines.append(f"  {kind}: {amount} {unit}")
    return "\n".join(lines)


def _cmd_backtest(args: argparse.Namespace) -> int:
    try:
        policy = (
            CompensationPolicy.from_file(args.policy)
            if args.policy
            else CompensationPolicy.default()
        )
    except PolicyError as exc:
        print(f"errdiscount: error: policy: {exc}", file=sys.stderr)
        return 2
    path = Path(args.events)
    try:
        handle = path.open("rb")
        size = path.stat().st_size
    except OSError as exc:
        print(f"errdiscount: error: {args.events}: {exc.strerror}", file=sys.stderr)
        return 2
    progress = None
    if size >= _PROGRESS_MIN_BYTES and sys.stderr.isatty():
        progress = _progress_bar(size, sys.stderr)
    try:
        with handle:
            result = run_backtest(_lines(handle), policy=policy, progress=progress)
    except OSError as exc:
        print(f"errdiscount: error: {args.events}: {exc.strerror}", file=sys.stderr)
        return 2
    for skipped in result.skip_reasons:
        where = f"line {skipped.line}" if skipped.line is not None else "a line"
        print(f"errdiscount: skipped {where}: {skipped.reason}", file=sys.stderr)
    hidden = result.skipped - len(result.skip_reasons)
    if hidden:
        print(f"errdiscount: ... and {hidden} more lines skipped", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(_summary(path.name, result))
    return 0


def add_backtest_command(commands: Any) -> None:
    """Register ``backtest`` on the CLI's sub-command parsers."""
    backtest = commands.add_parser(
        "backtest", help="replay an events file through the detection rules"
    )
    backtest.add_argument("events", metavar="EVENTS.jsonl", help="one event per line")
    backtest.add_argument("--policy", metavar="FILE", help="a policy file (.toml or .json)")
    backtest.add_argument("--json", action="store_true", help="print one JSON object")
    backtest.set_defaults(handler=_cmd_backtest)
