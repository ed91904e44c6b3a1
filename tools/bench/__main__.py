"""python -m bench {run,shards,sender,core} ... (see bench/__init__.py)."""
from __future__ import annotations

import sys

COMMANDS = ("run", "shards", "sender", "core", "profile", "api", "paradex", "ingest-compare", "d1cost", "freeplan",
            "saturation")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        from . import __doc__ as doc

        print(doc)
        return 0 if argv and argv[0] in ("-h", "--help") else 64
    command, rest = argv[0], argv[1:]
    if command == "run":
        from .runner import main as run_main
        return run_main(rest)
    if command == "shards":
        from .shards import main as shards_main
        return shards_main(rest)
    if command == "api":
        from .api import main as api_main
        return api_main(rest)
    if command == "profile":
        from .profile import main as profile_main
        return profile_main(rest)
    if command == "paradex":
        # Paradex's binary frames beside Lighter's JSON: CPython, then Pyodide (the
        # Worker's runtime, under node), with the JS-to-Python crossing of each.
        from .sbe_decode import main as sbe_main
        return sbe_main(rest) or sbe_main([*rest, "--pyodide"])
    if command == "ingest-compare":
        # Ingest inside workerd: Lighter, then Paradex, on the same book changes.
        from .compare import main as compare_main
        return compare_main(rest)
    if command == "d1cost":
        # D1 rows read and written, counted as D1 bills them (the simulation, D1's SQLite).
        from .d1cost import main as d1cost_main
        return d1cost_main(rest)
    if command == "freeplan":
        # A Free-plan deployment with the dashboard open: Durable Object and Worker requests a day.
        from .freeplan import main as freeplan_main
        return freeplan_main(rest)
    if command == "saturation":
        # The stats and control paths' latency while the feed is flat out (issue 18).
        from .saturation import main as saturation_main
        return saturation_main(rest)
    if command == "sender":
        from .sender import main as sender_main
        return sender_main(rest)
    from .core import main as core_main
    return core_main(rest)


if __name__ == "__main__":
    sys.exit(main())
