"""Start the simulator in a subprocess for tests (stdlib only, so any conftest can use it).

    with SimulatorProcess(markets=5, rate=10, seed=1) as sim:
        sim.get("/api/v1/orderBooks")
        sim.control("gap", market_id=0)

    with ParadexSimulatorProcess(markets=5, rate=10, seed=1) as px:  # --exchange paradex
        px.url         # http://127.0.0.1:PORT/v1 (the REST base)
        px.ws_url      # ws://127.0.0.1:PORT/v1?sbeSchemaId=1&sbeSchemaVersion=1
        px.get("/v1/markets")  # paths are from the server root, like /_sim/...

The simulator binds port 0 itself and logs the port it got, so there is no race
between picking a free port and binding it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional, Sequence

TOOLS_DIR = Path(__file__).resolve().parent.parent
_LISTEN_RE = re.compile(r"\[Sim\] listening on http://([^:\s]+):(\d+)")


class SimulatorError(RuntimeError):
    pass


class SimulatorProcess:
    def __init__(self, markets: int = 3, rate: float = 2.0, seed: int = 1,
                 extra_args: Sequence[str] = (), host: str = "127.0.0.1",
                 port: int = 0, startup_timeout: float = 20.0,
                 python: Optional[str] = None, exchange: str = "lighter"):
        if exchange not in ("lighter", "paradex"):
            raise ValueError(f"exchange must be lighter or paradex, not {exchange!r}")
        self.exchange = exchange
        self.markets, self.rate, self.seed = markets, rate, seed
        self.extra_args = list(extra_args)
        self.host, self.requested_port = host, port
        self.startup_timeout = startup_timeout
        self.python = python or sys.executable
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self._log_file = None
        self.log_path: Optional[str] = None

    # ---- lifecycle ---------------------------------------------------------------------
    @property
    def args(self) -> list[str]:
        return [self.python, "-m", "lighter_sim", "--exchange", self.exchange, "--host", self.host,
                "--port", str(self.requested_port), "--markets", str(self.markets),
                "--rate", str(self.rate), "--seed", str(self.seed), *self.extra_args]

    def start(self) -> "SimulatorProcess":
        if self.proc is not None:
            raise SimulatorError("already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TOOLS_DIR), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        fd, self.log_path = tempfile.mkstemp(prefix="lighter_sim_", suffix=".log")
        self._log_file = os.fdopen(fd, "w+b")
        self.proc = subprocess.Popen(self.args, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SimulatorError(f"simulator exited with {self.proc.returncode}:\n{self.output()}")
            m = _LISTEN_RE.search(self.output())
            if m:
                self.port = int(m.group(2))
                try:
                    self.get("/_sim/state")
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise SimulatorError(f"simulator did not start in {self.startup_timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "SimulatorProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        if self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)

    def output(self) -> str:
        """Everything the simulator logged so far ([Sim] lines)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # ---- addresses -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """http://HOST:PORT: the server root (request paths, /_sim/..., start from it)."""
        if self.port is None:
            raise SimulatorError("not started")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The exchange's REST base: the root for Lighter, .../v1 for Paradex."""
        return self.base_url + ("/v1" if self.exchange == "paradex" else "")

    @property
    def ws_url(self) -> str:
        if self.exchange == "paradex":
            return f"ws://{self.host}:{self.port}/v1?sbeSchemaId=1&sbeSchemaVersion=1"
        return f"ws://{self.host}:{self.port}/stream"

    # ---- HTTP helpers --------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None,
                timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
        """(status, headers, parsed JSON body) - does not raise on HTTP errors."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, headers, raw = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers), e.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return status, headers, parsed

    def get(self, path: str, timeout: float = 10.0) -> Any:
        status, _, body = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise SimulatorError(f"GET {path} -> {status}: {body}")
        return body

    def control(self, action: str, **params: Any) -> Any:
        status, _, body = self.request("POST", f"/_sim/{action}", params)
        if status != 200:
            raise SimulatorError(f"POST /_sim/{action} -> {status}: {body}")
        return body

    # conveniences for tests
    def state(self) -> dict:
        return self.get("/_sim/state")

    def book(self, market_id: "int | str") -> dict:
        """The simulator's whole book of a market (by id, or for Paradex also by symbol)."""
        key = "market" if isinstance(market_id, str) else "market_id"
        return self.get(f"/_sim/book?{key}={urllib.parse.quote(str(market_id))}")

    def record(self, market_id: "int | str | None" = None, since_ms: Optional[int] = None,
               conn: Optional[int] = None) -> list[dict]:
        mkey = "market" if isinstance(market_id, str) else "market_id"
        q = [f"{k}={urllib.parse.quote(str(v))}" for k, v in ((mkey, market_id), ("since_ms", since_ms),
                                                              ("conn", conn)) if v is not None]
        return self.get("/_sim/record" + ("?" + "&".join(q) if q else ""))

    def wait_flushed(self, timeout: float = 5.0) -> dict:
        """Wait until every open connection's outbound queue is empty; returns the state."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()
            if all(c["flushed"] for c in st["connections"] if c["open"]):
                return st
            if time.monotonic() > deadline:
                raise SimulatorError("outbound queues did not drain")
            time.sleep(0.02)


class ParadexSimulatorProcess(SimulatorProcess):
    """The simulator in Paradex mode (`--exchange paradex`)."""

    def __init__(self, markets: int = 3, rate: float = 2.0, seed: int = 1, **kw: Any):
        kw.setdefault("exchange", "paradex")
        super().__init__(markets, rate, seed, **kw)
