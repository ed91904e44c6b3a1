"""Benchmarks for the Lighter Orderbook Tracker (issue #5): `bash scripts/bench`.

    python -m bench run [--quick] [--messages N] [--markets M] ...   ingest, memory, API, start, D1, CPython floor
    python -m bench shards --shards 2 --markets 600                   sharding proof (also --shards 1 / 4)
    python -m bench sender ...                                        the stream server (started by `run`)
    python -m bench api [--rounds 5]                                  API throughput vs a bare Python Worker (floor)
    python -m bench core ...                                          the CPython floor alone
    python -m bench profile [--quick]                                 where workerd's time per message goes
    python -m bench paradex [--rounds 7]                              Paradex SBE beside Lighter JSON: decode, JS->Python, ingest
    python -m bench ingest-compare [--markets 50] [--seconds 15]       ingest in workerd, Lighter then Paradex, same changes
    python -m bench d1cost [--json PATH]                              D1 rows, alarms, object storage rows (the simulation)
    python -m bench freeplan [--minutes 6] [--json PATH]              the Free-plan deployment, dashboard open: requests a day
    python -m bench saturation [--seconds 20]                          stats and control latency, idle then flat out

Every command runs wrangler dev from a temporary COPY of wrangler.toml, src/, frontend/ and
python_modules/ (wrangler reloads on any source edit; the copy pins the code measured).
`run --proto NAME` applies a prototype fix from bench/protos.py to that copy only.

Figures go to bench-results/<name>.json (latest.json for `run`; shards-N.json; profile.json;
ingest-compare.json)
plus a timestamped copy in bench-results/history/; logs in bench-results/logs/. The folder
ignores itself (bench-results/.gitignore is `*`).
"""
