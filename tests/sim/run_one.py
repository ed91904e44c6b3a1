"""Run seeds of the simulation from the command line (scripts/simulate)."""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from world import run


def main() -> int:
    if "--mutants" in sys.argv[1:]:  # the mutation score: tests/sim/mutants.py
        import mutants

        return mutants.main(sys.argv[1:])
    ap = argparse.ArgumentParser(description="Deterministic simulation of the tracker")
    ap.add_argument("--seed", type=int, help="replay one seed (prints its log)")
    ap.add_argument("--seeds", type=int, default=200, help="run seeds FIRST..FIRST+N-1")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--mutants", action="store_true",
                    help="plant each bug of tests/sim/mutants.py and run the seeds on it (--jobs, --only)")
    args = ap.parse_args()
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    started = time.time()
    failed = 0
    exchanges: Counter = Counter()
    for seed in seeds:
        result = run(seed)
        plan = result.plan
        exchanges["+".join(v.exchange for v in plan.venues())] += 1
        if args.seed is not None or args.verbose:
            venues = "; ".join(f"{v.exchange}: shards={v.shards} markets={sorted(v.markets.values())}"
                               for v in plan.venues())
            print(f"seed {seed}: {venues} events={plan.events}")
        if args.seed is not None:
            for entry in result.world.logs:
                print(*entry)
        if result.violations:
            failed += 1
            print(f"seed {seed}: {len(result.violations)} violation(s); replay: {result.replay}")
            for line in result.violations[:10]:
                print("   ", line)
    n = len(seeds)
    print(f"{n} seed(s) ({', '.join(f'{k} {v}' for k, v in sorted(exchanges.items()))}), {failed} failed, "
          f"{time.time() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
