"""Shared pytest fixtures: the Lighter simulator and ONE `wrangler dev` per session.

    def test_something(worker, simulator):
        r = worker.get("/api/stats")                 # requests.Response
        worker.post("/api/start", headers=worker.admin_headers)
        simulator.control("gap", market_id=0)        # POST /_sim/gap, JSON in/out
        worker.wait_json("/api/stats", lambda s: s["isTracking"])
        worker.restart()                             # same port + persist dir

Tests under tests/integration/ get the `integration` marker automatically.
Nothing is skipped for a missing tool: scripts/setup (run by scripts/test)
installs everything. Logs of the session's processes land in tests/artifacts/.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

import devstack  # tools/ is on pythonpath (pyproject [tool.pytest.ini_options])

ROOT = devstack.ROOT
# LOT_ARTIFACTS lets concurrent test sessions keep their logs apart; so does each
# pytest-xdist worker (its own session: its own simulator and wrangler dev).
ARTIFACTS = Path(os.environ.get("LOT_ARTIFACTS") or ROOT / "tests" / "artifacts") / os.environ.get("PYTEST_XDIST_WORKER", "")
ADMIN_TOKEN = "test-token"
SIM_MARKETS = 6
SIM_RATE = 20
SIM_SEED = 7
STALE_FEED_SECONDS = 10
ALERT_AFTER_MINUTES = 0.25
SHARDS = 2
# The Paradex simulator: a few PERPs (plus options and a spot market the tracker filters out).
PARADEX_MARKETS = 3
PARADEX_RATE = 10


# lighter-sdk imports py_ecc, which raises the recursion limit to 100000 for
# the whole process at import time. Deeply nested input (json.loads("[" * 10**5))
# then overflows the C stack and segfaults pytest instead of raising
# RecursionError. Put the interpreter default back before every test
# (hypothesis still raises it temporarily inside its own tests).
_DEFAULT_RECURSION_LIMIT = 1000


@pytest.fixture(autouse=True)
def _restore_recursion_limit():
    if sys.getrecursionlimit() > _DEFAULT_RECURSION_LIMIT:
        sys.setrecursionlimit(_DEFAULT_RECURSION_LIMIT)
    yield


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration_dir = ROOT / "tests" / "integration"
    for item in items:
        if integration_dir in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
        # Under pytest-xdist (scripts/test), a file's tests run together and in order on
        # one worker: the integration files are stories over one tracking run. A test that
        # names a group of its own (the simulation's slices) keeps it.
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(Path(item.path).stem))
    # The longest groups first: pytest-xdist hands groups out in this order as workers
    # come free, so a long story started last cannot stretch the run by its whole length.
    first = {name: rank for rank, name in enumerate(LONGEST_GROUPS)}
    items.sort(key=lambda item: first.get(_group(item), len(first)))  # stable: a group keeps its order


class _GroupSuffix:
    """xdist's `--dist loadgroup` sends a group to one worker by reading `@<group>` off the
    end of each test's node id, which its worker-side hook writes into `item._nodeid`.
    pytest 9.2 keeps the node id in a structured `item._id` instead, so that write is lost
    and every test is handed out on its own (pytest-xdist issue #1386, fix proposed in
    PR #1388): a story's tests ran on several workers, and each worker started its own
    stacks, the private one included. This writes the suffix where pytest 9.2 reads it,
    after xdist's hook, the same way (sorted group names joined by `_`)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not config.getvalue("loadgroup"):
            return
        from _pytest.nodeid import NodeId

        for item in items:
            names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                            for m in item.iter_markers("xdist_group")})
            if names and not item.nodeid.endswith("@" + "_".join(names)) and hasattr(item, "_id"):
                item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


def pytest_configure(config: pytest.Config) -> None:
    # Only on an xdist worker (the controller schedules by the ids workers send).
    if hasattr(config, "workerinput"):
        config.pluginmanager.register(_GroupSuffix(), "lot-xdist-group-suffix")


# Groups that take longest, longest first (seconds on this project's 2-core machine, quiet,
# from junit.xml: test_tracking ~105, the deploy guide's own module ~80 (its API examples
# and log story), its checklist ~80, test_depth_hours ~55, test_dashboard ~53, the private
# stack's two modules ~50 plus that stack's start, test_findings ~50, test_edge_cache,
# test_api and test_paradex ~47 each, test_alerts ~40, test_live_socket ~39, the
# simulation's five slices ~30 each ...). pytest-xdist hands groups out in this order as
# workers come free: the longest start first, the short ones fill in at the end.
LONGEST_GROUPS = ("test_tracking", "test_deploy_guide", "deploy-guide-checklist", "test_depth_hours", "test_dashboard",
                  "private-worker", "test_findings", "test_edge_cache", "test_api", "test_paradex", "test_alerts",
                  "test_live_socket", "simulation-0", "simulation-1", "simulation-2", "simulation-3", "simulation-4",
                  "test_invariants_planted", "test_rest_hang", "test_migrations", "test_stack",
                  "deploy-guide-migrations")


def _group(item: pytest.Item) -> str:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return ""
    return marker.args[0] if marker.args else marker.kwargs.get("name", "")


# When each test ran, on which worker (tests/artifacts/<worker>/timeline.tsv: began, ended,
# seconds since the epoch, and the test): the run's critical path, which junit.xml's
# durations alone do not show.
TIMELINE = ARTIFACTS / "timeline.tsv"


def pytest_sessionstart(session: pytest.Session) -> None:
    TIMELINE.unlink(missing_ok=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    began = time.time()
    yield
    TIMELINE.parent.mkdir(parents=True, exist_ok=True)
    with TIMELINE.open("a") as timeline:
        timeline.write(f"{began:.1f}\t{time.time():.1f}\t{item.nodeid}\n")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _fresh_log(artifacts: Path, name: str) -> Path:
    path = artifacts / name
    path.unlink(missing_ok=True)
    return path


def wait_until(fn: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25, what: str = "condition") -> Any:
    """Call ``fn`` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except (requests.RequestException, KeyError, ValueError, AssertionError) as e:
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


class SimulatorHandle:
    """The session's simulator: addresses plus JSON helpers for /api/v1 and /_sim/."""

    def __init__(self, proc: devstack.Simulator):
        self.proc = proc
        self.port = proc.port
        self.url = proc.url  # the exchange's REST base (Paradex's ends in /v1)
        self.ws_url = proc.ws_url
        self.base_url = proc.base_url  # where /_sim/ and every path below is
        self.http = requests.Session()

    def request(self, method: str, path: str, json: Any = None, timeout: float = 10.0) -> requests.Response:
        return self.http.request(method, self.base_url + path, json=json, timeout=timeout)

    def get(self, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` (e.g. "/api/v1/orderBooks"), raise unless 200, return the parsed JSON."""
        r = self.request("GET", path, timeout=timeout)
        if r.status_code != 200:
            raise AssertionError(f"simulator GET {path} -> {r.status_code}: {r.text[:500]}")
        return r.json()

    def control(self, path: str, **params: Any) -> Any:
        """POST /_sim/<path> with ``params`` as the JSON body; raise unless 200; parsed JSON."""
        path = path if path.startswith("/_sim/") else "/_sim/" + path.lstrip("/")
        r = self.request("POST", path, json=params)
        if r.status_code != 200:
            raise AssertionError(f"simulator POST {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def state(self) -> Any:
        return self.get("/_sim/state")

    def log_text(self) -> str:
        return self.proc.log_text()


class WorkerHandle:
    """The session's `wrangler dev`: HTTP helpers, restart, and its log."""

    def __init__(self, proc: devstack.WranglerDev, token: str):
        self.proc = proc
        self.token = token
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def port(self) -> int:
        return self.proc.port

    @property
    def persist_dir(self) -> Path:
        return self.proc.persist_dir

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.http.request(method, self.url + path, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def admin_post(self, path: str, **kw: Any) -> requests.Response:
        headers = {**self.admin_headers, **kw.pop("headers", {})}
        return self.post(path, headers=headers, **kw)

    def get_json(self, path: str, **kw: Any) -> Any:
        r = self.get(path, **kw)
        assert r.status_code == 200, f"GET {path} -> {r.status_code}: {r.text[:500]}"
        return r.json()

    def wait_json(self, path: str, predicate: Callable[[Any], Any], timeout: float = 30.0, interval: float = 1.0) -> Any:
        """Poll GET ``path`` until ``predicate(json)`` is truthy; returns that JSON. Once a
        second: each poll of /api/stats runs Python in the Worker and in every shard's
        Durable Object, and four polls a second on each of the suite's stacks made their
        workerd the suite's largest CPU cost after the simulation (the suite is CPU-bound
        on 2 cores). What is awaited moves once a window (15 s) or once a second."""
        box: list[Any] = []

        def probe() -> bool:
            data = self.get_json(path)
            box[:] = [data]
            return bool(predicate(data))

        try:
            wait_until(probe, timeout=timeout, interval=interval, what=f"GET {path} to satisfy the predicate")
        except AssertionError as e:
            raise AssertionError(f"{e}; last body: {box[0] if box else None!r}") from None
        return box[0]

    def restart(self) -> None:
        """Stop and start wrangler dev again on the same port and persist dir."""
        self.proc.restart()

    def log_text(self) -> str:
        return self.proc.log_text()

    @property
    def alive(self) -> bool:
        return self.proc.alive


@pytest.fixture(scope="session")
def simulator(artifacts_dir: Path):
    proc = devstack.Simulator(
        _fresh_log(artifacts_dir, "simulator.log"), markets=SIM_MARKETS, rate=SIM_RATE, seed=SIM_SEED,
        # One extra market named `<img src=x onerror=alert(1)>`: the dashboard must show it as text.
        extra_args=("--hostile-symbol",),
    )
    proc.start()
    try:
        yield SimulatorHandle(proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def paradex_simulator(artifacts_dir: Path):
    """The same simulator in Paradex mode (SBE WebSocket, JSON-RPC, REST under /v1):
    the session's Worker tracks both exchanges at once."""
    proc = devstack.Simulator(
        _fresh_log(artifacts_dir, "simulator-paradex.log"), markets=PARADEX_MARKETS, rate=PARADEX_RATE,
        seed=SIM_SEED, exchange="paradex",
        # Protocol pings every 5 s (Paradex: 55 s), a pong due within 3 s: the Worker's
        # socket must answer them (workerd does, for the Python code) or be closed.
        extra_args=("--ping-interval", "5", "--pong-timeout", "3"),
    )
    proc.start()
    try:
        yield SimulatorHandle(proc)
    finally:
        proc.stop()


class WebhookReceiver:
    """A local HTTP endpoint that records every JSON body POSTed to it (alert tests)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append({"at": time.time(), "json": json.loads(body or b"null")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alert"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def since(self, t: float) -> list[dict]:
        return [r["json"] for r in self.received if r["at"] >= t]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="session")
def webhook():
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def migrated_d1(tmp_path_factory: pytest.TempPathFactory, persist: Path) -> None:
    """Put into `persist` a local D1 with migrations/ applied (`wrangler d1 migrations
    apply`, as DEPLOY.md does). Wrangler makes it once per test run, under a lock, in the
    folder every xdist worker of the run shares; each stack gets a copy: a wrangler run is
    seconds of CPU at the moment every worker starts its stack."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, shared by its workers (not by other runs)
    key = hashlib.sha256(b"".join(f.read_bytes() for f in sorted((ROOT / "migrations").glob("*.sql")))).hexdigest()[:16]
    template = base / f"d1-migrated-{key}"
    done = base / f"d1-migrated-{key}.done"
    with open(base / f"d1-migrated-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(template, ignore_errors=True)
            devstack.apply_migrations(template)
            done.touch()
    shutil.copytree(template, persist, dirs_exist_ok=True)


# The one other stack a session may start: a deployment locked down the other way (READ_TOKEN
# set, ADMIN_TOKEN unset) that never tracks, so its D1 holds only what a test puts there. It
# also answers D1's own row counters (D1_METER). The modules that use it share an xdist group
# (PRIVATE_GROUP), so one pytest worker starts it, once.
PRIVATE_GROUP = "private-worker"
READ_TOKEN = "read-token-for-tests"


@pytest.fixture(scope="session")
def private_worker(simulator: SimulatorHandle, artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from tracker.config import D1_METER_VAR

    persist = tmp_path_factory.mktemp("wrangler-private")
    devstack.check_setup()
    migrated_d1(tmp_path_factory, persist)
    proc = devstack.WranglerDev(
        _fresh_log(artifacts_dir, "wrangler-private.log"),
        persist_dir=persist,
        vars={"LIGHTER_API_URL": simulator.url, "LIGHTER_WS_URL": simulator.ws_url, "ADMIN_TOKEN": "",
              "READ_TOKEN": READ_TOKEN, D1_METER_VAR: "1"},
        ready_path="/api/openapi.json",  # public: the contract is the same for every deployment
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(persist, ignore_errors=True)


@pytest.fixture(scope="session")
def worker(simulator: SimulatorHandle, paradex_simulator: SimulatorHandle, webhook: WebhookReceiver, artifacts_dir: Path,
           tmp_path_factory: pytest.TempPathFactory):
    persist = tmp_path_factory.mktemp("wrangler-state")
    devstack.check_setup()
    migrated_d1(tmp_path_factory, persist)
    proc = devstack.WranglerDev(
        _fresh_log(artifacts_dir, "wrangler.log"),
        persist_dir=persist,
        vars={
            "LIGHTER_API_URL": simulator.url,
            "LIGHTER_WS_URL": simulator.ws_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            # Tests stall the feed on purpose: detect it in seconds, not half a minute.
            "STALE_FEED_SECONDS": str(STALE_FEED_SECONDS),
            # Two tracker shards, so every integration test also exercises sharding.
            "SHARDS": str(SHARDS),
            # Lighter's list is read again every 5 s: listing changes show in seconds.
            "MARKET_REFRESH_SECONDS": "5",
            # Feed-down alerts go to a local receiver after 15 s of outage.
            "ALERT_WEBHOOK_URL": webhook.url,
            "ALERT_AFTER_MINUTES": str(ALERT_AFTER_MINUTES),
            # The dashboard's stats every second (the default, 10 s, would make the live
            # socket and browser tests wait ten times longer for each push).
            "LIVE_PUSH_SECONDS": "1",
            # Both exchanges, as a deployment that opted in to Paradex (DEPLOY.md, section 20).
            "ENABLED_EXCHANGES": "lighter,paradex",
            "PARADEX_API_URL": paradex_simulator.url,
            "PARADEX_WS_URL": paradex_simulator.ws_url,
        },
    )
    proc.start()
    try:
        yield WorkerHandle(proc, ADMIN_TOKEN)
    finally:
        proc.stop()
        shutil.rmtree(persist, ignore_errors=True)
