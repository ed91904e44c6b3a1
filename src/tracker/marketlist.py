"""How a shard gets its market list, and how shard 0 shares it.

One REST read serves the deployment: shard 0 reads the exchange's listing, saves the
markets it tracks in D1 (what the API answers symbols from) and hands the listing to
the other shards; they read D1 instead at their own refresh (or when a hand-over
failed). A listing D1 refused is owed: saved again until it lands, and kept in
Durable Object storage meanwhile (UNSAVED_MARKETS_KEY), so an instance that goes
before then leaves it to the next (seed 326: a restart, then a stop before the next
refresh). What a listing changed is said here too, in the log; applying it to the
feed and the shard's state is the shard's (`ShardTracker._adopt`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .config import Config
from .directory import Change, MarketDirectory
from .exchange import Exchange
from .markets import Market, MarketListError
from .ports import Database, Http, Log, Peers, Storage

UNSAVED_MARKETS_KEY = "markets-unsaved"


class MarketList:
    def __init__(self, shard: int, exchange: Exchange, config: Config, http: Http, db: Database, peers: Peers,
                 storage: Storage, log: Log, shards: Callable[[], int], on_error: Callable[[str], None]) -> None:
        self.shard = shard  # the shard sets its saved identity here once loaded
        self.exchange, self.config = exchange, config
        self.http, self.db, self.peers, self.storage, self.log = http, db, peers, storage, log
        self.shards = shards  # SHARDS of the running split
        self.on_error = on_error  # the shard's last error, for its stats
        self.label = exchange.label
        self.unsaved: list[Market] | None = None  # a listing whose D1 save failed: saved again
        self._unsaved_stored: list[Market] | None = None  # that listing, as stored (UNSAVED_MARKETS_KEY)
        self._not_listed_reported: dict[str, str | None] = {}

    async def restore(self) -> None:
        """The listing a previous instance still owed D1."""
        unsaved = await self.storage.get(UNSAVED_MARKETS_KEY)
        if unsaved and self.unsaved is None:
            self.unsaved, _ = MarketDirectory.listing_from_payload(json.loads(unsaved))
            self._unsaved_stored = self.unsaved

    @property
    def owed(self) -> bool:
        """Shard 0 read a listing that D1 refused: saved again until it lands."""
        return self.unsaved is not None and self.shard == 0

    def due(self, directory: MarketDirectory, now: int) -> bool:
        return now >= directory.next_refresh_at() or self.owed

    async def read(self, directory: MarketDirectory, now: int) -> tuple[list[Market], int] | None:
        """A listing and when it was read (None: none came; the failure is logged and
        counted on `directory`). Shard 0 reads the exchange, saves and hands it over."""
        try:
            if self.shard == 0:
                listing = await directory.from_exchange(self.http, self.config, now)
                as_of = now
                self.unsaved = directory.tracked(listing)  # only those reach D1
                await self.save(now)
                await self._hand_over(listing, as_of)
            else:
                listing, as_of = await directory.from_d1(self.db)
                if not listing:
                    raise MarketListError("no saved market list in D1 yet (shard 0 saves it)")
        except Exception as exc:
            directory.failures += 1
            directory.refreshed_at = now
            self.on_error(f"market list: {exc}")
            self.log("warn", self.label, "markets_failed", f"could not load markets: {exc}")
            if directory.markets or self.shard != 0:
                return None
            # Shard 0 without any list: the one saved last time beats not tracking.
            listing, as_of = await directory.from_d1(self.db)
            if not listing:
                return None
            self.log("info", self.label, "markets_from_d1", f"using {len(listing)} markets saved in D1")
        return listing, as_of

    async def save(self, now: int) -> None:
        """The owed listing into D1; refused, it stays owed (and stored)."""
        listing = self.unsaved
        try:
            await self.db.batch(MarketDirectory.save_statements(listing, self.shards(), now, self.exchange.sql))
        except Exception as exc:
            self.log("error", self.label, "d1_error", f"could not save markets to D1, will retry: {exc}")
            if self._unsaved_stored is not listing:
                await self.storage.put_many(
                    {UNSAVED_MARKETS_KEY: json.dumps(MarketDirectory.listing_payload(listing, now))})
                self._unsaved_stored = listing
            return
        if self.unsaved is listing:  # (not a newer listing read meanwhile)
            self.unsaved = None
            if self._unsaved_stored is not None:
                await self.storage.delete_many([UNSAVED_MARKETS_KEY])
                self._unsaved_stored = None

    async def _hand_over(self, listing: list[Market], as_of: int) -> None:
        payload = MarketDirectory.listing_payload(listing, as_of)
        for shard in range(1, self.shards()):  # the running split's (SHARDS may have changed by a deploy)
            try:
                await self.peers.send_markets(shard, payload)
            except Exception as exc:  # that shard reads D1 at its own refresh instead
                self.log("warn", self.label, "handover_failed", f"could not hand the market list to shard {shard}: {exc}")

    def report(self, directory: MarketDirectory, change: Change, first: bool, listed: int) -> None:
        """Log what a listing of `listed` markets, just applied to `directory`, changed."""
        if directory.duplicates:
            self.log("warn", self.label, "duplicate_symbols",
                     f"symbols shared by several markets (rows are kept apart by market id): {directory.duplicates}")
        if directory.collisions:
            self.log("error", self.label, "id_collision",
                     f"symbols sharing one market id (only the first is tracked): {directory.collisions}")
        self._report_not_listed(directory)
        shards = self.config.shards
        if first:
            where = f" ({len(directory.markets)} on shard {self.shard + 1}/{shards})" if shards > 1 else ""
            kept = f"; {self._allowlist_var()} keeps {directory.kept}" if directory.allowed is not None else ""
            self.log("info", self.label, "markets_loaded",
                     f"markets loaded: {directory.listed} active of {listed} listed{kept}{where}")
            return
        for market in change.added:
            self.log("info", self.label, "market_listed", f"new market {market.market_index} {market.symbol}: subscribing")
        for market in change.removed:
            self.log("info", self.label, "market_delisted",
                     f"market {market.market_index} {market.symbol} delisted: unsubscribing")

    def _allowlist_var(self) -> str:
        return f"{self.exchange.name.upper()}_MARKETS"

    def _report_not_listed(self, directory: MarketDirectory) -> None:
        """Symbols of the allowlist the exchange does not list: said once, by shard 0 (the one
        that reads the exchange), at the refresh that notices, and again when that changes."""
        missing = directory.not_listed
        if self.shard != 0 or missing == self._not_listed_reported:
            return
        self._not_listed_reported = dict(missing)
        var = self._allowlist_var()
        if not missing:
            self.log("info", self.label, "markets_not_listed", f"every symbol of {var} is listed now")
            return
        named = ", ".join(f"{s} (listed: {hint})" if hint else s for s, hint in missing.items())
        self.log("warn", self.label, "markets_not_listed",
                 f"{var} names {len(missing)} symbol(s) {self.exchange.label} does not list, skipped: {named}")
