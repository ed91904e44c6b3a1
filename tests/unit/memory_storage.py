"""A Durable Object's storage in memory, for the unit tests of the parts that keep
things in it (the outbox, the flusher, the market list): the key-value calls the
tracker makes (tracker/ports.py Storage), each put_many recorded as one transaction."""

from __future__ import annotations


class MemoryStorage:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.puts: list[dict[str, str]] = []  # each put_many's entries: one transaction

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def put_many(self, entries: dict[str, str]) -> None:
        self.puts.append(dict(entries))
        self.data.update(entries)

    async def delete_many(self, keys) -> None:
        for key in keys:
            self.data.pop(key, None)
