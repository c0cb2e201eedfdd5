"""Detection quality and cost: the rules of docs/detection.md on a labelled corpus.

Run: ``python benchmarks/detect.py`` (a few minutes; ``--quick`` for a smaller corpus,
``--quality-only`` to stop after part 1).

1. Quality. A synthetic week of traffic (seeded, described in docs/benchmarks.md) with
   labels: which (user, endpoint, period) truly had a persistent failure. Scored for
   the engine at its defaults and two naive baselines, side by side:
   - precision: compensations given to a user who truly had a persistent failure on
     that endpoint at that time (a compensation matches a label when the user and
     endpoint agree and it falls between the label's start and 60 min after its end);
   - recall: labels matched by at least one compensation; by user: (user, scenario)
     pairs with at least one label matched (one outage on four endpoints labels a
     user four times; one compensation pays the user);
   - blip compensations: compensations on normal endpoints outside every label;
   - detection delay: incident opened - outage start; episode opened - fault start;
     the incident delay again without the onset rule, for comparison.
   Goals: precision >= 0.99, recall >= 0.95, 0 blip compensations, median incident
   delay <= 5 min.
2. Engine cost per detector run vs active (endpoint, user) series, 10k and 100k: one
   run = one per-minute observation per series + advancing the clock one minute.
   Goal: <= 1 s at 100k, linear.
3. Backtest speed: events/s of `run_backtest` over the corpus as JSON lines, next to a
   floor of ``json.loads`` of the same lines (same run, interleaved, median of 3), on
   the corpus' first `SPEED_LINES` lines.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gc
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from errdiscount_sdk._provider.backtest import run_backtest
from errdiscount_sdk._provider.detection import Detector
from errdiscount_sdk._provider.detection_config import DetectionSettings, IncidentSettings
from errdiscount_sdk._provider.detection_events import from_event_line
from errdiscount_sdk._provider.detection_types import (
    CompensationDecided,
    CompensationWithheld,
    EpisodeOpened,
    IncidentOpened,
    Observation,
)

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # a Monday: the corpus is one week from it
MIN = 60.0
DAY = 24 * 60 * MIN
DAYS = 7
ACTIVE = 0.5  # the chance that a user has sessions on a given day: 5,000 of 10,000 a day
NORMAL = {  # endpoint -> per-attempt transient error rate (blips)
    "GET /api/feed": 0.001,
    "POST /api/cart": 0.005,
    "POST /api/pay": 0.01,
    "GET /api/orders": 0.02,
}
LOW = "GET /api/admin/export"
BIZ = "POST /api/coupon"
ATTEMPTS = 3  # the SDK's default RetryPolicy: transient failures are retried


class Corpus:
    def __init__(self, users: int, faults: int, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.events: list[tuple[float, str, str, str]] = []  # (t, user, endpoint, kind)
        # label: (user, endpoint or "*", start, end, scenario)
        self.labels: list[tuple[str, str, float, float, str]] = []
        self.outages: list[tuple[str, float, float, str]] = []  # (endpoint, start, end, name)
        self.users = users
        self.faults = faults

    # failure models: endpoint -> list of (start, end, fn(t) -> final failure prob)
    def build(self) -> None:
        rnd = self.rnd
        self.windows: dict[str, list[tuple[float, float, float, str]]] = defaultdict(list)

        # Outages start at a random second: a real one does not wait for a minute to
        # begin. At most one outage scenario a day, more than 24 h apart, so that a
        # user hit by two of them is the exception, as in a real week.
        def start(day: int, hours: float) -> float:
            return day * DAY + hours * 60 * MIN + rnd.uniform(0, MIN)

        self._outage("POST /api/cart", start(0, 2), 45 * MIN, 0.25, "partial outage 25%")
        self._outage("GET /api/feed", start(1, 5), 20 * MIN, 1.0, "full outage 20 min")
        self._outage("POST /api/pay", start(2, 9), 150 * MIN, 1.0, "full outage 150 min")
        down = start(3, 15)
        for name in NORMAL:
            self._outage(name, down, 8 * MIN, 1.0, "database down 8 min")
        flap = start(4, 19)
        for k in range(12):  # 2 min at 70% failing, 3 min fine, for an hour
            self._outage("GET /api/orders", flap + k * 5 * MIN, 2 * MIN, 0.7, "flapping")
        sessions = []
        for u in range(self.users):
            user = f"user{u:05d}"
            for day in range(DAYS):
                if rnd.random() >= ACTIVE:
                    continue
                for _ in range(rnd.randint(1, 4)):
                    start = day * DAY + rnd.uniform(0, DAY - 60 * MIN)
                    sessions.append((user, start, start + rnd.uniform(10, 60) * MIN))
        faulted = rnd.sample(sessions, self.faults)
        fault_of = {}
        for user, start, _ in faulted:
            endpoint = rnd.choice(list(NORMAL))
            f_start = start + 2 * MIN
            f_end = f_start + rnd.uniform(10, 30) * MIN
            fault_of[(user, start)] = (endpoint, f_start, f_end)
            self.labels.append((user, endpoint, f_start, f_end, "single-user fault"))
        for user, start, end in sessions:
            fault = fault_of.get((user, start))
            t = start
            while t < end:
                self._call(t, user, rnd.choice(list(NORMAL)), fault)
                t += rnd.expovariate(1 / 90)
            if fault:  # the user keeps trying the broken call
                endpoint, f_start, f_end = fault
                t = f_start
                while t < f_end:
                    self._call(t, user, endpoint, fault)
                    t += rnd.expovariate(1 / 45)
        for i in range(5):  # low traffic: 5 users, a call every ~20 min, 5% failing
            t = rnd.uniform(0, 20 * MIN)
            while t < DAYS * DAY:
                kind = "error" if rnd.random() < 0.05 else "ok"
                self.events.append((t, f"admin{i}", LOW, kind))
                t += rnd.expovariate(1 / (20 * MIN))
        for i in range(100):  # business-error flood: 40% refused for 6 hours, on day 5
            t = 5 * DAY + 6 * 60 * MIN + rnd.uniform(0, 2 * MIN)
            while t < 5 * DAY + 12 * 60 * MIN:
                kind = "business" if rnd.random() < 0.4 else "ok"
                self.events.append((t, f"shopper{i:03d}", BIZ, kind))
                t += rnd.expovariate(1 / 120)
        self.events.sort()
        self._outage_labels()

    def _outage(self, endpoint: str, start: float, length: float, p: float, name: str) -> None:
        self.windows[endpoint].append((start, start + length, p, name))
        self.outages.append((endpoint, start, start + length, name))

    def _call(self, t: float, user: str, endpoint: str, fault) -> None:
        rnd = self.rnd
        final = None
        if fault and fault[0] == endpoint and fault[1] <= t < fault[2]:
            final = "error"
        else:
            for start, end, p, _ in self.windows.get(endpoint, ()):
                if start <= t < end:
                    final = "error" if rnd.random() < p else None
                    break
        if final is None:
            blip = NORMAL[endpoint]
            failed = all(rnd.random() < blip for _ in range(ATTEMPTS))
            final = "error" if failed else "ok"
        self.events.append((t, user, endpoint, final))

    def _outage_labels(self) -> None:
        """Full outages: every caller during it; partial/flapping: >= 2 failures."""
        by_endpoint: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
        for t, user, endpoint, kind in self.events:
            by_endpoint[endpoint].append((t, user, kind))
        groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for endpoint, start, end, name in self.outages:
            groups[(endpoint, name)].append((start, end))
        for (endpoint, name), spans in groups.items():
            calls = by_endpoint[endpoint]
            times = [c[0] for c in calls]
            first, last = spans[0][0], spans[-1][1]
            seen: dict[str, list[float]] = defaultdict(list)
            for start, end in spans:
                for t, user, kind in calls[bisect.bisect_left(times, start) :]:
                    if t >= end:
                        break
                    if name.startswith(("full", "database")) or kind == "error":
                        seen[user].append(t)
            for user, ts in seen.items():
                if name.startswith(("full", "database")) or len(ts) >= 2:
                    self.labels.append((user, endpoint, first, last, name))

    def lines(self) -> list[str]:
        out = []
        for n, (t, user, endpoint, kind) in enumerate(self.events):
            ts = (T0 + dt.timedelta(seconds=t)).isoformat().replace("+00:00", "Z")
            error = kind in ("error", "business")
            status = (400 if n % 2 else 409) if kind == "business" else (503 if error else 200)
            event = {
                "event_id": f"ev{n}",
                "ts": ts,
                "kind": "call",
                "outcome": "error" if error else "ok",
                "user_id": user,
                "endpoint": endpoint,
                "method": endpoint.split()[0],
                "status": status,
                "error_code": "COUPON_EXPIRED" if kind == "business" else None,
                "category": ("business" if kind == "business" else "protocol") if error else None,
                "severity": "minor",
                "transient": kind == "error",
                "attempts": ATTEMPTS if kind == "error" else 1,
                "duration_ms": 40,
                "platform": "ios",
                "os_version": "17.2",
                "app_version": "5.1.0",
                "sdk_version": "0.1.0",
                "source": "client",
                "params": {},
            }
            out.append(json.dumps(event))
        return out


def engine(lines: Iterable[str], settings: DetectionSettings | None = None):
    """Our rules: compensations as (user, endpoint, ref start, t), the ones the
    cooldown withheld (owed, not paid), the incidents and episodes opened."""
    detector = Detector(settings=settings)
    comps, withheld, opened_incidents, episodes = [], [], [], []
    refs: dict[str, tuple[tuple[str, ...], float]] = {}
    for line in lines:
        observation = from_event_line(line)
        if observation is None:
            continue
        for d in detector.feed(observation):
            if isinstance(d, EpisodeOpened):
                refs[d.episode_id] = ((d.endpoint,), _t(d.start))
                episodes.append(d)
            elif isinstance(d, IncidentOpened):
                refs[d.incident_id] = (d.scope, _t(d.start))
                opened_incidents.append(d)
            elif isinstance(d, CompensationDecided | CompensationWithheld):
                if isinstance(d, CompensationWithheld) and d.why != "cooldown":
                    continue  # covered by an incident, which compensates
                scope, start = refs[d.ref]
                into = comps if isinstance(d, CompensationDecided) else withheld
                into.extend((d.user_id, endpoint, start, _t(d.at)) for endpoint in scope)
    return comps, withheld, opened_incidents, episodes


def _t(ts: dt.datetime) -> float:
    return (ts - T0).total_seconds()


def baseline(lines: Iterable[str], threshold: int):
    """Naive: compensate a user at ``threshold`` final errors (any category) on an
    endpoint within 60 min; at most once per (user, endpoint) per hour."""
    recent: dict[tuple[str, str], list[float]] = defaultdict(list)
    last: dict[tuple[str, str], float] = {}
    comps = []
    for line in lines:
        event = json.loads(line)
        if event["outcome"] != "error":
            continue
        t = _t(dt.datetime.fromisoformat(event["ts"]))
        key = (event["user_id"], event["endpoint"])
        window = [x for x in recent[key] if x >= t - 60 * MIN] + [t]
        recent[key] = window
        if len(window) >= threshold and t - last.get(key, -1e18) >= 60 * MIN:
            last[key] = t
            comps.append((key[0], key[1], t, t))
    return comps


def score(comps, labels):
    by_key: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for user, endpoint, start, end, _ in labels:
        by_key[(user, endpoint)].append((start, end))
    matched: set[tuple[str, str, float]] = set()
    tp = blips = 0
    for user, endpoint, since, t in comps:
        hit = None
        for start, end in by_key.get((user, endpoint), ()):
            # the compensation's episode/incident overlaps the labelled period
            if start <= t and since <= end + 60 * MIN:
                hit = (user, endpoint, start)
                break
        if hit:
            tp += 1
            matched.add(hit)
        elif endpoint in NORMAL:
            blips += 1
    label_keys = {(u, e, s) for u, e, s, _, _ in labels}
    precision = tp / len(comps) if comps else 1.0
    recall = len(matched & label_keys) / len(label_keys) if label_keys else 1.0
    # By user: a (user, scenario) is matched when any of its labels is. "Database
    # down" labels a user once per endpoint called; one compensation pays the user.
    users: dict[tuple[str, str], bool] = {}
    for u, e, s, _, name in labels:
        users[(u, name)] = users.get((u, name), False) or (u, e, s) in matched
    by_user = sum(users.values()) / len(users) if users else 1.0
    return precision, recall, blips, len(comps), by_user


def incident_delays(corpus: Corpus, incidents, *, verbose: bool) -> list[float]:
    """Minutes from each full outage's start to the first incident opened on it."""
    delays = []
    for endpoint, start, _end, name in corpus.outages:
        if not name.startswith(("full", "database")):
            continue
        found = [i for i in incidents if endpoint in i.scope and _t(i.at) >= start]
        if found:
            delays.append((_t(found[0].at) - start) / 60)
            if verbose:
                print(f"  incident {name} on {endpoint}: opened after {delays[-1]:.2f} min")
        elif verbose:
            print(f"  incident {name} on {endpoint}: NOT opened")
    return delays


def quality(corpus: Corpus, lines: list[str]) -> None:
    print(f"corpus: {len(lines)} events, {corpus.users} users, {len(corpus.labels)} labels")
    per_scenario: dict[str, int] = defaultdict(int)
    for label in corpus.labels:
        per_scenario[label[4]] += 1
    for name, n in sorted(per_scenario.items()):
        print(f"  label {name}: {n}")
    comps, withheld, incidents, episodes = engine(lines)
    rows = [
        ("ours (defaults)", comps),
        ("ours, owed (cooldown-withheld counted)", comps + withheld),
        ("any failure after retries", baseline(lines, 1)),
        (">= 3 failures in 60 min", baseline(lines, 3)),
    ]
    print()
    print("| method | compensations | precision | recall | recall by user | blip compensations |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, found in rows:
        precision, recall, blips, n, by_user = score(found, corpus.labels)
        print(f"| {name} | {n} | {precision:.3f} | {recall:.3f} | {by_user:.3f} | {blips} |")
    print()
    print("per scenario (ours): labels matched / labels (by user)")
    for name in sorted(per_scenario):
        labels = [lb for lb in corpus.labels if lb[4] == name]
        _, recall, _, _, user_paid = score(comps, labels)
        _, owed, _, _, user_owed = score(comps + withheld, labels)
        print(
            f"  {name}: recall {recall:.3f} paid, {owed:.3f} owed, of {len(labels)}"
            f" (by user {user_paid:.3f} paid, {user_owed:.3f} owed)"
        )
    delays = incident_delays(corpus, incidents, verbose=True)
    others = [
        i
        for i in incidents
        if not any(
            i.scope[0] == e for e, _, _, n in corpus.outages if n.startswith(("full", "database"))
        )
    ]
    print(f"  other incidents: {len(others)}")
    if delays:
        print(
            f"median incident detection delay: {statistics.median(delays):.2f} min "
            f"(max {max(delays):.2f})"
        )
    no_onset = DetectionSettings(incident=IncidentSettings(onset_min_failures=0))
    before = incident_delays(corpus, engine(lines, no_onset)[2], verbose=False)
    if before:
        print(
            f"  without the onset rule (onset_min_failures = 0): median "
            f"{statistics.median(before):.2f} min (range {min(before):.2f}-{max(before):.2f})"
        )
    ep_delays = []
    for user, endpoint, start, _end, name in corpus.labels:
        if name != "single-user fault":
            continue
        hits = [
            e
            for e in episodes
            if e.user_id == user and e.endpoint == endpoint and start <= _t(e.at) <= _end + 60 * MIN
        ]
        if hits:
            ep_delays.append((_t(hits[0].at) - start) / 60)
    if ep_delays:
        print(
            f"median episode detection delay (single-user faults): "
            f"{statistics.median(ep_delays):.2f} min (p90 "
            f"{sorted(ep_delays)[int(len(ep_delays) * 0.9)]:.2f})"
        )


def run_cost(series: int) -> tuple[float, float]:
    """Seconds of one detector run with `series` active series (100 users/endpoint)."""
    per_endpoint = 100
    detector = Detector()
    names = [(f"GET /api/e{i // per_endpoint}", f"u{i % per_endpoint}") for i in range(series)]
    rnd = random.Random(7)
    for minute in range(5):  # warm: every series active
        base = T0 + dt.timedelta(minutes=minute)
        for endpoint, user in names:
            detector.feed(Observation(ts=base, user_id=user, endpoint=endpoint, failed=False))
    batch = [
        Observation(
            ts=T0 + dt.timedelta(minutes=5, seconds=1),
            user_id=user,
            endpoint=endpoint,
            failed=rnd.random() < 0.01,
            count=3,
        )
        for endpoint, user in names
    ]
    gc.collect()
    start = time.perf_counter()
    for observation in batch:
        detector.feed(observation)
    detector.advance(T0 + dt.timedelta(minutes=6, seconds=1))
    total = time.perf_counter() - start
    start = time.perf_counter()
    detector.advance(T0 + dt.timedelta(minutes=7, seconds=1))  # a run with no new data
    idle = time.perf_counter() - start
    assert detector.active_series() == series
    return total, idle


#: Backtest speed is measured on the corpus' first lines (its first days), so that the
#: run and its memory stay bounded as the corpus grows; the rate is per event.
SPEED_LINES = 320_000


def speed(lines: list[str], rounds: int) -> None:
    encoded = [line.encode() for line in lines[:SPEED_LINES]]
    ours, floor = [], []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for line in encoded:
            json.loads(line)
        floor.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        result = run_backtest(encoded)
        ours.append(time.perf_counter() - start)
    n = result.events
    print(
        f"backtest: {n / statistics.median(ours):,.0f} events/s "
        f"(median of {rounds}, spread {min(ours):.2f}-{max(ours):.2f} s); "
        f"json.loads floor {n / statistics.median(floor):,.0f} lines/s; "
        f"ratio {statistics.median(floor) / statistics.median(ours):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--quality-only", action="store_true", help="skip cost and speed")
    args = parser.parse_args()
    corpus = Corpus(users=4000 if args.quick else 10_000, faults=60, seed=2026)
    corpus.build()
    lines = corpus.lines()
    quality(corpus, lines)
    if args.quality_only:
        return
    print()
    print("| active series | one run (s) | idle run (s) |")
    print("|---:|---:|---:|")
    results = {}
    for series in (10_000, 100_000):
        runs = [run_cost(series) for _ in range(1 if args.quick else 3)]
        total = statistics.median(r[0] for r in runs)
        idle = statistics.median(r[1] for r in runs)
        results[series] = total
        print(f"| {series:,} | {total:.3f} | {idle:.3f} |")
    print(f"100k / 10k: {results[100_000] / results[10_000]:.1f}x (linear: 10x)")
    print()
    speed(lines, 1 if args.quick else 3)


if __name__ == "__main__":
    main()
