"""python -m lighter_sim --port P --markets N --rate R --seed S ..."""
from __future__ import annotations

import asyncio
import sys

from .config import parse_args
from .server import serve


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
