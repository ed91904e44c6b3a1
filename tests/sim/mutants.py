"""Mutation testing of the simulation: bugs of our own, planted one at a time, each
run against the suite's seeds until one of them notices (`scripts/simulate --mutants`).

An invariant is only as good as the bugs it catches. Each `Mutant` here is one small,
realistic slip in one layer of the tracker (an off-by-one at a window boundary, a `<`
for a `<=`, a forgotten `await`, a missing invalidate...), written as a source rewrite:
`old` must occur exactly once in `path` (under src/), and is replaced by `new` in a
temporary copy of src/ (the tree in git is never touched). The simulation then runs
in a child process whose `tracker` package is that copy, seed after seed, and stops at
the first seed whose run breaks an invariant (or raises, or hangs: the suite would
fail on it just the same). A mutant no seed notices is a survivor: a hole in the
world or the invariants, to be closed by widening the world or adding the invariant
that catches it (with its planted-bug test), not explained away.

A mutant that is truly equivalent (it preserves behaviour, so no test could ever tell)
says why in `equivalent` and is left out of the score.

    bash scripts/simulate --mutants                      # every mutant, the suite's seeds, 2 processes
    bash scripts/simulate --mutants --seeds 300 --jobs 2
    bash scripts/simulate --mutants --only pacer_unsubscribe_unheld --verbose

The suite (tests/sim/test_mutants.py) checks only that every mutant still applies to
today's code and that a couple are caught within a few seeds; the full run is here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
# The layers the mutants must cover (issue 18, "Mutation score").
LAYERS = ("outbox", "rollup", "prune", "pacing", "directory", "connection", "aggregator", "feed", "wire", "api",
          "shard")
# Seeds beyond the suite's 0..999 that the suite runs in tests of their own (pinned
# findings, tests/sim/test_findings.py and test_invariants_planted.py): run after the
# range on every mutant, so "the suite's seeds" means all of them.
EXTRA_SEEDS = (1031, 1458, 3528, 3696)
# A seed that runs longer than this under a mutant is a hang (the suite's timeout would fail it).
SEED_TIMEOUT_S = 120


@dataclass(frozen=True)
class Mutant:
    name: str
    layer: str
    path: str  # under src/
    old: str  # occurs exactly once in the file
    new: str
    says: str  # one line: the slip
    equivalent: str | None = None  # why it preserves behaviour (then: not in the score)


def _m(name, layer, path, old, new, says, equivalent=None) -> Mutant:
    return Mutant(name, layer, f"tracker/{path}", old, new, says, equivalent)


MUTANTS: tuple[Mutant, ...] = (
    # -- outbox -------------------------------------------------------------------------------
    _m("outbox_drops_batch_on_flush_failure", "outbox", "outbox.py",
       "                self.failures_in_a_row += 1\n",
       "                self.failures_in_a_row += 1\n"
       "                self.entries = [e for e in self.entries if e.start not in done]\n",
       "a failed D1 flush forgets the batch it tried (removed as if written)"),
    _m("outbox_chunk_short_by_one", "outbox", "outbox.py",
       "rows[i : i + CHUNK_ROWS]", "rows[i : i + CHUNK_ROWS - 1]",
       "each stored chunk of a window holds one row fewer than it should (the last row of each chunk lost)"),
    _m("outbox_drops_windows_in_flight", "outbox", "outbox.py",
       "droppable = [e for e in entries if e.start not in self._writing][:overflow]",
       "droppable = entries[:overflow]",
       "an overflow drops (and records lost) the oldest windows even while a flush is writing them"),
    _m("outbox_index_saved_before_ack", "outbox", "outbox.py",
       "            self.failures_in_a_row = 0\n            if batch:",
       "            self.failures_in_a_row = 0\n            if batch and metas:",
       "a batch D1 acknowledged with no statement metas (an empty result) stays in the outbox",
       equivalent="db.batch returns one meta per statement and a batch here always has one: "
                  "`metas` is never empty when `batch` is not"),
    # -- shard (stop, stash, stats) -------------------------------------------------------------
    _m("stop_forgets_await_on_stash", "shard", "shard.py",
       "            record_given_up(state, aggregator, self.config.window_ms, self.log)\n            await self._stash(closed)",
       "            record_given_up(state, aggregator, self.config.window_ms, self.log)\n            self._stash(closed)",
       "stop() calls _stash without await: the partial windows never reach the outbox"),
    _m("overflow_drop_not_recorded_in_memory", "shard", "shard.py",
       "                if state.record_lost(entry.start, entry.start + window_ms, window_ms):\n"
       "                    recorded.append(state.lost_ranges[-1])\n"
       "            return {STATE_KEY: state.to_json()}",
       "                pass\n"
       "            saved = TrackerState.from_json(state.to_json())\n"
       "            for entry in dropped:\n"
       "                saved.record_lost(entry.start, entry.start + window_ms, window_ms)\n"
       "            return {STATE_KEY: saved.to_json()}",
       "windows the outbox bound dropped are recorded lost in storage but not in the state kept in memory"),
    _m("disabled_exchange_tracks_on", "shard", "shard.py",
       "            if self.exchange.name not in self.config.enabled_exchanges:\n",
       "            if False:\n",
       "a shard whose exchange a deploy took out of ENABLED_EXCHANGES tracks on"),
    _m("stop_leaves_stats_row_unpublished", "shard", "shard.py",
       "            state.stats_unpublished = True\n",
       "            pass\n",
       "a stop does not insist on its stats row (is_tracking=0) reaching D1"),
    # -- aggregator ------------------------------------------------------------------------------
    _m("window_end_inclusive", "aggregator", "aggregator.py",
       "        if not self._cur_start <= ts < self._cur_end:\n            self._switch_window(ts)\n        accs = self._cur",
       "        if not self._cur_start <= ts <= self._cur_end:\n            self._switch_window(ts)\n        accs = self._cur",
       "a tick stamped exactly at a window's end is counted in that window, not the next"),
    _m("close_boundary_not_aligned", "aggregator", "aggregator.py",
       "        boundary_ms -= boundary_ms % self.window_ms\n", "",
       "close_until moves flushed_until to the unaligned boundary (the next window's first seconds count as late)"),
    _m("twap_credits_new_mid", "aggregator", "aggregator.py",
       "acc.tw_sum += standing[1] * elapsed", "acc.tw_sum += mid * elapsed",
       "the time-weighted mid credits the elapsed time to the new mid instead of the one that stood"),
    _m("avg_mid_from_last_tick", "aggregator", "aggregator.py",
       "avg_mid=(avg_bid + avg_ask) / 2,", "avg_mid=(self.last_bid + self.last_ask) / 2,",
       "avg_mid is the last tick's mid instead of the mean of the window's bids and asks"),
    _m("largest_filled_size_not_counted", "aggregator", "aggregator.py",
       "for k in range(len(buy)):", "for k in range(len(buy) - 1):",
       "a sample's largest filled slippage size is not added (off by one over the sizes)"),
    _m("given_up_window_not_recorded", "aggregator", "aggregator.py",
       "        self.given_up.append(start)\n", "",
       "a window given up while alarms stalled is dropped without its lost range"),
    _m("min_spread_le", "aggregator", "aggregator.py",
       "if spread < acc.min_spread:", "if spread <= acc.min_spread:",
       "min_spread takes an equal spread again",
       equivalent="assigning a value equal to the minimum leaves the minimum unchanged"),
    # -- feed ------------------------------------------------------------------------------------
    _m("gap_without_invalidate", "feed", "feed.py",
       "        self.aggregator.invalidate(book.market_id, ts)\n        self.pacer.resubscribe(book.market_id)",
       "        self.pacer.resubscribe(book.market_id)",
       "a nonce gap drops the book but leaves its top of book standing in the time-weighted mid"),
    _m("depth_sampled_per_ms", "feed", "feed.py",
       "if self._sample_seconds[market_id] != second:", "if self._sample_seconds[market_id] != ts:",
       "depth is sampled once per exchange millisecond instead of once per second"),
    _m("locked_book_ticks", "feed", "feed.py",
       "            if bid < ask:\n", "            if bid <= ask:\n",
       "a locked book (best bid == best ask) counts as a tick instead of invalidating"),
    _m("refusal_never_retried", "feed", "feed.py",
       "            self.aggregator.invalidate(market_id, self.last_timestamp)\n        self.pacer.failed(market_id, held=held)",
       "            self.aggregator.invalidate(market_id, self.last_timestamp)",
       "a refused subscribe is never retried (the market stays untracked)"),
    _m("backlog_ignored", "feed", "feedtime.py",
       "    if backlogged:\n", "    if False:\n",
       "the alarm let in at a breath closes windows by its clock, frames still queued behind the breath"),
    # -- pacing ----------------------------------------------------------------------------------
    _m("pacer_in_flight_le", "pacing", "pacing.py",
       "while self._queue and len(self.in_flight) < self.max_in_flight:",
       "while self._queue and len(self.in_flight) <= self.max_in_flight:",
       "the pacer lets one subscribe more than its in-flight share go out (< for <=)"),
    _m("pacer_rate_window_le", "pacing", "pacing.py",
       "            if len(sent_at) + cost > limit:\n", "            if len(sent_at) + cost > limit + 1:\n",
       "the pacer's rate check is off by one: a subscribe more than its per-minute share"),
    _m("pacer_unsubscribe_unheld", "pacing", "pacing.py",
       "held = market_id in self.subscribed or market_id in self.in_flight",
       "held = True",
       "a resubscribe always unsubscribes first, even without a held subscription"),
    _m("pacer_no_ack_timeout", "pacing", "pacing.py",
       "                else:\n                    self.resubscribe(market_id)",
       "                else:\n                    pass",
       "a subscribe never answered is never sent again"),
    _m("budget_in_flight_not_shared", "pacing", "pacing.py",
       "in_flight=in_flight // shards)", "in_flight=in_flight)",
       "every shard gets the whole in-flight budget instead of its share"),
    _m("budget_per_minute_not_shared", "pacing", "pacing.py",
       "per_minute=per_minute // shards,", "per_minute=per_minute,",
       "every shard gets the whole per-minute budget instead of its share"),
    # -- connection ------------------------------------------------------------------------------
    _m("send_history_per_connection", "connection", "connection.py",
       "SubscriptionPacer(self.budget.per_minute, self.budget.in_flight, sent_at=self.sent_at,",
       "SubscriptionPacer(self.budget.per_minute, self.budget.in_flight,",
       "each new connection starts its rate window empty (the shard's send history not shared)"),
    _m("drop_leaves_books_standing", "connection", "connection.py",
       "                for market_id in feed.books:\n                    feed.aggregator.invalidate(market_id, feed.last_timestamp)\n",
       "                pass\n",
       "a dropped connection leaves every top of book standing (credited through the outage)"),
    _m("breath_not_noted", "connection", "connection.py",
       "        self.breathed = True\n        if self.socket is not None:",
       "        if self.socket is not None:",
       "a breath is asked for but not noted: the alarm it lets in does not know frames are queued"),
    # -- directory -------------------------------------------------------------------------------
    _m("delisted_never_removed", "directory", "directory.py",
       "removed=[m for i, m in sorted(self.markets.items()) if i not in mine],", "removed=[],",
       "a delisted market is never removed (never unsubscribed)"),
    _m("refresh_twice_as_late", "directory", "directory.py",
       "        return self.refreshed_at + self.refresh_ms\n", "        return self.refreshed_at + 2 * self.refresh_ms\n",
       "the market list is read every two refresh periods instead of one"),
    _m("restore_ignores_split", "directory", "directory.py",
       "if shard_of(m.market_index, self.shards) == self.shard and self.keeps(m)}", "if self.keeps(m)}",
       "a resumed shard keeps every saved market, not only its share under today's SHARDS"),
    _m("inactive_markets_tracked", "directory", "directory.py",
       "active = [m for m in listing if m.active]", "active = list(listing)",
       "markets the exchange lists as inactive are tracked too"),
    # -- rollup ----------------------------------------------------------------------------------
    _m("rollup_depth_weighted_by_ticks", "rollup", "rollup.py",
       'f: sum(r[f] * r["depth_samples"] for r in sampled) / samples if samples else None for f in DEPTH_MEANS',
       'f: sum(r[f] * r["tick_count"] for r in sampled) / sum(r["tick_count"] for r in sampled) '
       'if samples else None for f in DEPTH_MEANS',
       "a rollup weighs depth means by ticks instead of depth samples"),
    _m("rollup_last_from_first", "rollup", "rollup.py",
       "    last = rows[-1]\n", "    last = rows[0]\n",
       "a rolled-up row's last bid/ask come from its oldest part"),
    _m("rollup_frontier_rounds_up", "rollup", "rollup.py",
       "frontier = min(limit - limit % MINUTE_MS, _ceil_minute(state.flushed_until))",
       "frontier = min(_ceil_minute(limit), _ceil_minute(state.flushed_until))",
       "the minute frontier rounds up: a minute is rolled before every window of it is in D1"),
    _m("twap_covered_counts_all", "rollup", "rollup.py",
       'covered = sum(r["covered_ms"] for r in rows if r["twap_mid"] is not None)',
       'covered = sum(r["covered_ms"] for r in rows)',
       "the rolled-up covered_ms also sums parts without a twap_mid",
       equivalent="a part has twap_mid NULL exactly when its covered_ms is 0, so the sums are equal"),
    # -- prune -----------------------------------------------------------------------------------
    _m("minutes_pruned_by_window_retention", "prune", "rollup.py",
       "(min(now - self.config.minute_retention_ms, _floor_hour(self.sealed_until()))",
       "(min(now - self.config.snapshot_retention_ms, _floor_hour(self.sealed_until()))",
       "minutes are pruned by the windows' retention instead of their own"),
    _m("prune_one_minute_late", "prune", "rollup.py",
       "                             now - now % MINUTE_MS - MINUTE_MS)",
       "                             now - now % MINUTE_MS)",
       "the window prune's bound is one minute too late (it may reach the last minute's windows)",
       equivalent="SNAPSHOT_RETENTION_MINUTES >= 1, so the bounds differ only at 1 minute, and only for windows "
                  "of the previous minute that every shard has sealed (rolled, no debt): a minute is rolled "
                  "again only from a run's first minute (the floor of its start's clock, later than the "
                  "prune's on one clock) or a debt (held back by sealed), and past retention the API judges "
                  "no rows. Observable only with hosts' clocks disagreeing (a start whose clock reads before "
                  "the prune's), which the world's one clock does not model"),
    _m("hours_pruned_by_minute_retention", "prune", "rollup.py",
       "(now - self.config.hour_retention_ms, shards, self.shard)",
       "(now - self.config.minute_retention_ms, shards, self.shard)",
       "hours are pruned by the minutes' retention instead of their own"),
    # -- wire ------------------------------------------------------------------------------------
    _m("lighter_nonces_swapped", "wire", "protocol.py",
       "            timestamp,\n            nonce,\n            begin_nonce,\n",
       "            timestamp,\n            begin_nonce,\n            nonce,\n",
       "Lighter's nonce and begin_nonce are swapped in the parsed frame"),
    _m("lighter_zero_size_refused", "wire", "protocol.py",
       "0.0 < price < INF and 0.0 <= size < INF", "0.0 < price < INF and 0.0 < size < INF",
       "a Lighter level of size 0 (a removal) is refused as malformed"),
    _m("paradex_sides_swapped", "wire", "paradex.py",
       "seq, seq - 1, event.bids, event.asks)", "seq, seq - 1, event.asks, event.bids)",
       "Paradex's bids and asks are swapped"),
    _m("paradex_seq_shifted", "wire", "paradex.py",
       "seq, seq - 1, event.bids, event.asks)", "seq + 1, seq, event.bids, event.asks)",
       "Paradex's seq shifted by one into the nonce and begin nonce",
       equivalent="continuity only compares each begin nonce with the previous nonce: a constant shift of both "
                  "preserves every comparison, and the nonce is stored nowhere"),
    _m("sbe_one_ask_removal_refused", "wire", "sbe.py",
       '                if price <= 0 or size < 0:\n                    raise _bad_level((price, size), "asks")',
       '                if price <= 0 or size <= 0:\n                    raise _bad_level((price, size), "asks")',
       "an SBE delta removing one ask (size 0) is refused as malformed"),
    _m("sbe_snapshot_flag_inverted", "wire", "sbe.py",
       "return BookEvent(ts, seq, pkg == 0, market, bids, asks)", "return BookEvent(ts, seq, pkg == 1, market, bids, asks)",
       "SBE pkgType read backwards: snapshots as deltas and deltas as snapshots"),
    # -- api (health) ----------------------------------------------------------------------------
    _m("health_best_shard_wins", "api", "health.py",
       'worst = max(shards, key=lambda s: _RANK[s["status"]])', 'worst = min(shards, key=lambda s: _RANK[s["status"]])',
       "/api/health reports the best shard's status instead of the worst"),
    _m("health_late_key_misspelt", "api", "health.py",
       '"lateLastMinute": stats.get("lateLastMinute") or 0,', '"lateLastMinute": stats.get("lateFrames") or 0,',
       "health reads the run's total late frames instead of the last minute's (degraded for good after one)"),
)


class MutantError(ValueError):
    """A mutant that no longer applies to today's code."""


def by_name(name: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise KeyError(name)


def mutated_source(mutant: Mutant, src: Path = SRC) -> str:
    """The file's text with the mutant applied; raises MutantError unless `old` occurs
    exactly once and the result compiles."""
    text = (src / mutant.path).read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise MutantError(f"{mutant.name}: its text occurs {count} times in {mutant.path}, not once")
    out = text.replace(mutant.old, mutant.new)
    if out == text:
        raise MutantError(f"{mutant.name}: the rewrite changes nothing")
    try:
        compile(out, mutant.path, "exec")
    except SyntaxError as exc:
        raise MutantError(f"{mutant.name}: the mutated {mutant.path} does not compile: {exc}") from None
    return out


def planted_tree(mutant: Mutant, into: Path) -> Path:
    """A copy of src/ under `into` with the mutant applied; returns the copy's src/."""
    dest = into / "src"
    shutil.copytree(SRC, dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / mutant.path).write_text(mutated_source(mutant))
    return dest


# -- one mutant, in a child process whose `tracker` is the mutated copy ----------------------


def run_planted(mutant: Mutant, seeds: list[int], timeout_s: float | None = None) -> dict:
    """Plant `mutant` in a temporary copy of src/ and run `seeds` in a child process
    (nice'd) until one catches it. Returns {"name", "seed" (None: survived), "says"
    (the first violation), "seeds_run", "seconds"}."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        src = planted_tree(mutant, Path(tmp))
        paths = [str(src), str(ROOT / "tools"), str(ROOT / "tests"), str(ROOT / "tests" / "sim")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [sys.executable, "-W", "ignore", str(Path(__file__)), "--child", mutant.name,
               "--seed-list", ",".join(map(str, seeds))]
        try:
            done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"name": mutant.name, "seed": None, "says": f"not finished within {timeout_s} s",
                    "seeds_run": None, "seconds": time.time() - started, "error": True}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"name": mutant.name, "seed": None, "says": f"child failed: {done.stderr.strip()[-300:]}",
                "seeds_run": None, "seconds": time.time() - started, "error": True}
    result = json.loads(lines[-1])
    result["seconds"] = time.time() - started
    return result


class _Hang(Exception):
    pass


def _child(name: str, seeds: list[int]) -> dict:
    """In the child: the tracker imported here is the mutated copy (PYTHONPATH)."""
    import tracker  # noqa: F401 - check where it comes from
    import world

    where = Path(tracker.__file__).resolve()
    assert SRC not in where.parents, f"the child imported the real tracker ({where}), not the planted copy"

    def hang(signum, frame):
        raise _Hang()

    signal.signal(signal.SIGALRM, hang)
    for n, seed in enumerate(seeds, 1):
        signal.alarm(SEED_TIMEOUT_S)
        try:
            violations = world.run(seed).violations
        except _Hang:
            violations = [f"hung: seed ran more than {SEED_TIMEOUT_S} s"]
        except Exception as exc:  # the suite would fail on it: caught
            violations = [f"raised {type(exc).__name__}: {exc}"]
        finally:
            signal.alarm(0)
        if violations:
            return {"name": name, "seed": seed, "says": violations[0][:300], "seeds_run": n}
    return {"name": name, "seed": None, "says": None, "seeds_run": len(seeds)}


# -- the whole run -----------------------------------------------------------------------------


def score(results: list[dict]) -> tuple[int, int]:
    """(caught, scored): equivalent mutants and runs that failed to run are not scored."""
    scored = [r for r in results if not by_name(r["name"]).equivalent and not r.get("error")]
    return sum(1 for r in scored if r["seed"] is not None), len(scored)


def table(results: list[dict]) -> str:
    lines = [f"{'mutant':<38} {'layer':<10} {'seed':>5} {'time':>7}  caught by"]
    for r in results:
        mutant = by_name(r["name"])
        if mutant.equivalent:
            caught = f"(equivalent: {mutant.equivalent})"
        elif r.get("error"):
            caught = f"NOT RUN: {r['says']}"
        elif r["seed"] is None:
            caught = f"SURVIVED {r['seeds_run']} seeds: {mutant.says}"
        else:
            caught = r["says"][:110]
        seed = "-" if r["seed"] is None else str(r["seed"])
        lines.append(f"{mutant.name:<38} {mutant.layer:<10} {seed:>5} {r['seconds']:>6.1f}s  {caught}")
    caught, scored = score(results)
    equivalent = sum(1 for r in results if by_name(r["name"]).equivalent)
    lines.append(f"score: {caught}/{scored} caught ({100 * caught / max(scored, 1):.0f} %); "
                 f"{equivalent} equivalent not scored; survivors: "
                 f"{', '.join(r['name'] for r in results if r['seed'] is None and not by_name(r['name']).equivalent) or 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Mutation score of the deterministic simulation")
    ap.add_argument("--mutants", action="store_true", help="(scripts/simulate's switch: run the mutants)")
    ap.add_argument("--seeds", type=int, default=int(os.environ.get("SIM_SEEDS", "600")),
                    help="run seeds FIRST..FIRST+N-1 on each mutant (default 600, the seeds "
                         "docs/mutants.txt scores over; the suite runs 300)")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="mutants run side by side (default 2)")
    ap.add_argument("--only", nargs="*", help="these mutants only (names)")
    ap.add_argument("--equivalent", action="store_true", help="run the equivalent mutants too")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--seed-list", help="these seeds (comma-separated) instead of --first/--seeds")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, [int(s) for s in args.seed_list.split(",")])))
        return 0
    mutants = [by_name(n) for n in args.only] if args.only else list(MUTANTS)
    for mutant in mutants:
        mutated_source(mutant)  # every one applies, before anything runs
    seeds = ([int(s) for s in args.seed_list.split(",")] if args.seed_list
             else list(range(args.first, args.first + args.seeds)) + list(EXTRA_SEEDS))
    chosen = [m for m in mutants if args.equivalent or not m.equivalent or args.only]
    print(f"{len(chosen)} mutant(s), {len(seeds)} seeds ({seeds[0]}, {seeds[1] if len(seeds) > 1 else ''} .. "
          f"{seeds[-1]}), {args.jobs} process(es)", flush=True)
    started = time.time()

    def one(mutant: Mutant) -> dict:
        result = run_planted(mutant, seeds)
        if args.verbose:
            where = "SURVIVED" if result["seed"] is None else f"seed {result['seed']}"
            print(f"  {mutant.name}: {where} ({result['seconds']:.1f} s) {result['says'] or ''}"[:200], flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, chosen))
    results += [{"name": m.name, "seed": None, "says": None, "seeds_run": 0, "seconds": 0.0}
                for m in mutants if m not in chosen]
    print(table(results))
    print(f"{time.time() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    caught, scored = score(results)
    return 0 if caught == scored else 1


if __name__ == "__main__":
    sys.exit(main())
