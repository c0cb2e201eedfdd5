"""Import cost of ``errdiscount_sdk`` vs ``httpx``, in fresh interpreters.

Run: ``python benchmarks/import_time.py`` (about 30 seconds). Options:
``--rounds N`` (default 9), ``--source DIR`` (the tree whose ``errdiscount_sdk``
is measured; default this checkout — point it at an export of an older commit
to compare).

Each round starts three fresh interpreters, in an order that rotates from round
to round: ``python -c pass`` (interpreter start), ``import httpx`` and ``import
errdiscount_sdk``; the CPU time (user + system) of each process is taken, and
the import cost is its median over the rounds minus the median interpreter
start. The figure
reported is the ratio ours / httpx (ours includes httpx itself: the SDK is built
on it). Goal: <= 1.3.

Two modes:
- ``cached``: bytecode caches as a developer's machine has them.
- ``no-bytecode``: as CI runs a fresh checkout — ``PYTHONDONTWRITEBYTECODE=1``
  and the SDK copied without ``__pycache__``, so every SDK module is compiled
  on import (installed dependencies keep their caches, as after ``pip install``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = {"start": "pass", "httpx": "import httpx", "ours": "import errdiscount_sdk"}
GOAL = 1.3


def run_once(code: str, *, cwd: Path, env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one fresh interpreter running ``code``.

    CPU time, not wall time: on a shared machine the wall clock mostly measures
    the neighbours, while the CPU an import burns is its own.
    """
    process = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{code!r} failed with exit code {process.returncode}")
    return usage.ru_utime + usage.ru_stime


def measure(source: Path, rounds: int, *, no_bytecode: bool) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        shutil.copytree(
            source / "errdiscount_sdk",
            tree / "errdiscount_sdk",
            ignore=shutil.ignore_patterns("__pycache__") if no_bytecode else None,
        )
        env["PYTHONPATH"] = str(tree)
        if no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            run_once(PROGRAMS["ours"], cwd=tree, env=env)  # write the caches once
        names = list(PROGRAMS)
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_number in range(rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(run_once(PROGRAMS[name], cwd=tree, env=env))
    return times


def report(mode: str, times: dict[str, list[float]]) -> float:
    start = statistics.median(times["start"])
    cost = {name: statistics.median(times[name]) - start for name in ("httpx", "ours")}
    spread = {
        name: (min(times[name]) - start, max(times[name]) - start) for name in ("httpx", "ours")
    }
    ratio = cost["ours"] / cost["httpx"]
    print(
        f"{mode:12} start {start * 1000:6.1f} ms | httpx {cost['httpx'] * 1000:6.1f} ms "
        f"({spread['httpx'][0] * 1000:.1f}-{spread['httpx'][1] * 1000:.1f}) | "
        f"errdiscount_sdk {cost['ours'] * 1000:6.1f} ms "
        f"({spread['ours'][0] * 1000:.1f}-{spread['ours'][1] * 1000:.1f}) | "
        f"ratio {ratio:.2f} (goal <= {GOAL})"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--source", type=Path, default=ROOT)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds, source {args.source}")
    ratios = [
        report(mode, measure(args.source, args.rounds, no_bytecode=mode == "no-bytecode"))
        for mode in ("cached", "no-bytecode")
    ]
    return 0 if max(ratios) <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
