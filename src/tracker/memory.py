"""What the tracker's in-memory state weighs, measured from the objects themselves.

Used by /api/stats and the benchmarks to show that memory follows the number of
markets and book levels, not the number of messages or the run time.
"""

from __future__ import annotations

from sys import getsizeof

from .aggregator import WindowAggregator
from .orderbook import OrderBook

_FLOAT = getsizeof(1.0)


def book_bytes(book: OrderBook) -> int:
    levels = len(book.bid_prices) + len(book.ask_prices)
    return (
        getsizeof(book)
        + getsizeof(book.bids) + getsizeof(book.asks)
        + getsizeof(book.bid_prices) + getsizeof(book.ask_prices)
        + levels * 2 * _FLOAT  # a price (shared by dict and list) and a size per level
    )


def aggregator_bytes(aggregator: WindowAggregator) -> int:
    total = getsizeof(aggregator._windows) + getsizeof(aggregator._standing)
    for accs in aggregator._windows.values():
        total += getsizeof(accs) + sum(getsizeof(acc) + 12 * _FLOAT for acc in accs.values())
    total += len(aggregator._standing) * (getsizeof([0, 0.0]) + _FLOAT)
    return total


def state_report(books: dict[int, OrderBook], aggregator: WindowAggregator | None) -> dict:
    return {
        "books": sum(book_bytes(b) for b in books.values()),
        "levels": sum(b.depth() for b in books.values()),
        "aggregator": aggregator_bytes(aggregator) if aggregator is not None else 0,
    }
