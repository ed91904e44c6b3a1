"""Start and stop the local stack: the exchange simulator(s) and `wrangler dev`.

Shared by `scripts/run` (``python -m devstack ...``) and the pytest fixtures in
tests/conftest.py. Standard library only. Everything it runs was installed by
scripts/setup (Node 22, wrangler, workerd + the offline Pyodide dev bundle,
python_modules/).

Local `wrangler dev` always gets, on the command line only (wrangler.toml stays
production-clean)::

    --local --ip 127.0.0.1 --port P --inspector-port Q --persist-to DIR
    --compatibility-flags python_workers --compatibility-flags python_workers_development
    --var NAME:VALUE ...

with MINIFLARE_WORKERD_PATH=.cache/workerd-wrapper and Node 22 first on PATH.
Each child runs in its own process group (so stopping it also stops workerd),
its output goes to a log file (and, for scripts/run, to the terminal too).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
WORKERD_WRAPPER = CACHE / "workerd-wrapper"
PYODIDE_BUNDLE = CACHE / "pyodide" / "pyodide_dev.capnp.bin"
WRANGLER_JS = ROOT / "node_modules" / "wrangler" / "bin" / "wrangler.js"
SCHEMA = ROOT / "schema.sql"

DEV_COMPAT_FLAGS = ("python_workers", "python_workers_development")

LIGHTER_MAINNET = ("https://mainnet.zklighter.elliot.ai", "wss://mainnet.zklighter.elliot.ai/stream?readonly=true")
LIGHTER_TESTNET = ("https://testnet.zklighter.elliot.ai", "wss://testnet.zklighter.elliot.ai/stream?readonly=true")
EXCHANGES = ("lighter", "paradex")
PARADEX_SBE_QUERY = "?sbeSchemaId=1&sbeSchemaVersion=1"

WRANGLER_READY_TIMEOUT = 90.0  # wrangler Ready ~3 s + first Python request ~6 s; CI is slow
SIMULATOR_READY_TIMEOUT = 30.0


class DevStackError(RuntimeError):
    """A stack component failed to start (message includes its log tail)."""


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def node_bin_dir() -> Path | None:
    """Node 22 installed by scripts/setup, if it had to install one."""
    for d in sorted((CACHE / "node22" / "node_modules").glob("node-linux-*/bin")):
        if (d / "node").is_file():
            return d
    return None


def node_executable() -> str:
    d = node_bin_dir()
    if d is not None:
        return str(d / "node")
    found = shutil.which("node")
    if not found:
        raise DevStackError("node not found: run scripts/setup")
    return found


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ plus what scripts/env.sh sets (Node 22 first on PATH, workerd wrapper)."""
    env = dict(os.environ)
    path = [str(ROOT / "node_modules" / ".bin")]
    d = node_bin_dir()
    if d is not None:
        path.insert(0, str(d))
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
    env["MINIFLARE_WORKERD_PATH"] = str(WORKERD_WRAPPER)
    env["WRANGLER_SEND_METRICS"] = "false"
    env["WRANGLER_LOG_PATH"] = str(ROOT / ".wrangler" / "logs")
    env["FORCE_COLOR"] = "0"
    env["NO_COLOR"] = "1"
    env.pop("NODE_OPTIONS", None)
    if extra:
        env.update(extra)
    return env


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for our own Python children: tools/ and src/ importable, unbuffered."""
    env = dict(os.environ)
    parts = [str(ROOT / "tools"), str(ROOT / "src")]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def check_setup() -> None:
    """Fail early, with the fix, when scripts/setup has not run."""
    missing = [
        str(p.relative_to(ROOT))
        for p in (WRANGLER_JS, WORKERD_WRAPPER, PYODIDE_BUNDLE, ROOT / "python_modules")
        if not p.exists()
    ]
    if missing:
        raise DevStackError(f"missing {', '.join(missing)}: run scripts/setup first")


def wrangler_argv(*args: str) -> list[str]:
    return [node_executable(), str(WRANGLER_JS), *args]


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------
def apply_schema(
    persist_dir: Path | str,
    schema: Path | str = SCHEMA,
    *,
    cwd: Path | str = ROOT,
    config: Path | str | None = None,
    binding: str = "DB",
    timeout: float = 120.0,
) -> str:
    """`wrangler d1 execute DB --local --persist-to DIR --file=schema.sql`; returns its output."""
    persist_dir = Path(persist_dir).resolve()
    persist_dir.mkdir(parents=True, exist_ok=True)
    argv = wrangler_argv(
        "d1", "execute", binding, "--local", "--yes",
        "--persist-to", str(persist_dir), f"--file={Path(schema).resolve()}",
    )
    if config is not None:
        argv += ["--config", str(Path(config).resolve())]
    proc = subprocess.run(
        argv, cwd=str(cwd), env=tool_env({"CI": "true"}), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise DevStackError(f"applying {schema} failed (exit {proc.returncode}):\n{_tail(proc.stdout)}")
    return proc.stdout


def apply_migrations(
    persist_dir: Path | str,
    *,
    cwd: Path | str = ROOT,
    binding: str = "DB",
    timeout: float = 120.0,
) -> str:
    """`wrangler d1 migrations apply DB --local --persist-to DIR`: the database made the
    way DEPLOY.md makes it (migrations/, recorded in d1_migrations); returns its output.
    Applying again changes nothing."""
    persist_dir = Path(persist_dir).resolve()
    persist_dir.mkdir(parents=True, exist_ok=True)
    argv = wrangler_argv("d1", "migrations", "apply", binding, "--local", "--persist-to", str(persist_dir))
    proc = subprocess.run(
        argv, cwd=str(cwd), env=tool_env({"CI": "true"}), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise DevStackError(f"wrangler d1 migrations apply failed (exit {proc.returncode}):\n{_tail(proc.stdout)}")
    return proc.stdout


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------
def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when the process that started it dies (Linux),
    so a crashed pytest or scripts/run leaves no wrangler/workerd behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # not Linux / no libc: best effort only
        pass


class ManagedProcess:
    """A child in its own process group; output copied to a log file (and optionally echoed)."""

    name = "process"

    def __init__(self, log_path: Path | str, *, echo: bool = False, cwd: Path | str = ROOT):
        self.log_path = Path(log_path)
        self.echo = echo
        self.cwd = Path(cwd)
        self.proc: subprocess.Popen | None = None
        self._pump: threading.Thread | None = None

    # subclasses provide these
    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def _spawn(self) -> None:
        if self.alive:
            raise DevStackError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n")
        self.proc = subprocess.Popen(
            argv, cwd=str(self.cwd), env=self.env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._pump = threading.Thread(target=self._copy_output, args=(self.proc,), daemon=True)
        self._pump.start()

    def _copy_output(self, proc: subprocess.Popen) -> None:
        prefix = f"[{self.name}] ".encode()
        with open(self.log_path, "ab") as f:
            for line in iter(proc.stdout.readline, b""):
                f.write(line)
                f.flush()
                if self.echo:
                    try:
                        sys.stdout.buffer.write(prefix + line)
                        sys.stdout.flush()
                    except (ValueError, OSError):
                        pass
        proc.stdout.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL after ``timeout``; idempotent."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Also reap stragglers (workerd) left in the group after the leader exited.
        self._signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._pump is not None:
            self._pump.join(timeout=5)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"===== {time.strftime('%H:%M:%S')} stopped (exit {proc.returncode})\n")

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # start_new_session: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _fail(self, what: str) -> DevStackError:
        code = self.proc.poll() if self.proc else None
        state = f"exited with {code}" if code is not None else "still running"
        return DevStackError(f"{self.name}: {what} ({state}); log {self.log_path}:\n{_tail(self.log_text())}")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> None:
        raise NotImplementedError


class Simulator(ManagedProcess):
    """`python -m lighter_sim --port P --markets N --rate R --seed S` (tools/lighter_sim);
    exchange="paradex" adds `--exchange paradex` (REST base .../v1, SBE WebSocket /v1)."""

    name = "sim"

    def __init__(
        self,
        log_path: Path | str,
        *,
        port: int | None = None,
        markets: int = 6,
        rate: float = 20,
        seed: int = 7,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
        echo: bool = False,
        exchange: str = "lighter",
    ):
        super().__init__(log_path, echo=echo)
        if exchange not in EXCHANGES:
            raise ValueError(f"exchange must be one of {EXCHANGES}, not {exchange!r}")
        self.exchange = exchange
        if exchange != "lighter":
            self.name = f"sim-{exchange}"
        self.port = port or free_port()
        self.markets = markets
        self.rate = rate
        self.seed = seed
        self.extra_args = list(extra_args)
        self.python = python

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The exchange's REST base (Paradex's ends in /v1)."""
        return self.base_url + ("/v1" if self.exchange == "paradex" else "")

    @property
    def ws_url(self) -> str:
        if self.exchange == "paradex":
            return f"ws://127.0.0.1:{self.port}/v1{PARADEX_SBE_QUERY}"
        return f"ws://127.0.0.1:{self.port}/stream"

    def argv(self) -> list[str]:
        exchange = ["--exchange", self.exchange] if self.exchange != "lighter" else []
        return [
            self.python, "-m", "lighter_sim", *exchange, "--port", str(self.port),
            "--markets", str(self.markets), "--rate", str(self.rate), "--seed", str(self.seed),
            *self.extra_args,
        ]

    def env(self) -> dict[str, str]:
        return python_env()

    def start(self, timeout: float = SIMULATOR_READY_TIMEOUT) -> None:
        if port_is_open(self.port):
            raise DevStackError(f"sim: port {self.port} is already in use")
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise self._fail("exited before listening")
            if port_is_open(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise self._fail(f"port {self.port} not open after {timeout:.0f} s")


class WranglerDev(ManagedProcess):
    """`wrangler dev --local` with the offline Python Workers setup."""

    name = "wrangler"

    def __init__(
        self,
        log_path: Path | str,
        *,
        persist_dir: Path | str,
        port: int | None = None,
        inspector_port: int | None = None,
        vars: Mapping[str, str] | None = None,
        cwd: Path | str = ROOT,
        config: Path | str | None = None,
        ready_path: str = "/api/markets",
        extra_args: Sequence[str] = (),
        echo: bool = False,
    ):
        super().__init__(log_path, echo=echo, cwd=cwd)
        self.persist_dir = Path(persist_dir).resolve()
        self.port = port or free_port()
        self.inspector_port = inspector_port or free_port()
        self.vars = dict(vars or {})
        self.config = Path(config).resolve() if config else None
        self.ready_path = ready_path
        self.extra_args = list(extra_args)
        self.ready_seconds: float | None = None  # start -> port open ("Ready on")
        self.first_response_seconds: float | None = None  # start -> first HTTP answer
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        args = [
            "dev", "--local", "--ip", "127.0.0.1", "--port", str(self.port),
            "--inspector-port", str(self.inspector_port), "--persist-to", str(self.persist_dir),
            "--show-interactive-dev-session=false", "--log-level", "log",
        ]
        for flag in DEV_COMPAT_FLAGS:
            args += ["--compatibility-flags", flag]
        for k, v in self.vars.items():
            args += ["--var", f"{k}:{v}"]
        if self.config is not None:
            args += ["--config", str(self.config)]
        return wrangler_argv(*args, *self.extra_args)

    def env(self) -> dict[str, str]:
        return tool_env()

    def start(self, timeout: float = WRANGLER_READY_TIMEOUT) -> None:
        check_setup()
        if port_is_open(self.port):
            raise DevStackError(f"wrangler: port {self.port} is already in use")
        self.persist_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self._spawn()
        self.starts += 1
        self.ready_seconds = self.first_response_seconds = None
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise self._fail("exited during start-up")
            if port_is_open(self.port):  # workerd listens once wrangler says "Ready on"
                self.ready_seconds = time.monotonic() - t0
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise self._fail(f"port {self.port} not open after {timeout:.0f} s")
        # The first request boots Pyodide (~6 s); any HTTP status means the Worker answered.
        while time.monotonic() < deadline:
            if not self.alive:
                raise self._fail("exited during the first request")
            remaining = max(1.0, deadline - time.monotonic())
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=remaining):
                    pass
            except urllib.error.HTTPError:
                pass  # answered, with an error status: still up
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.25)
                continue
            self.first_response_seconds = time.monotonic() - t0
            return
        self.stop()
        raise self._fail(f"no HTTP answer from {self.url}{self.ready_path} within {timeout:.0f} s")

    def restart(self, timeout: float = WRANGLER_READY_TIMEOUT) -> None:
        """Stop and start again on the same port and persist dir (D1 + DO storage survive)."""
        self.stop()
        deadline = time.monotonic() + 15
        while port_is_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.start(timeout=timeout)


# ---------------------------------------------------------------------------
# scripts/run
# ---------------------------------------------------------------------------
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="scripts/run",
        description="Run the tracker locally: exchange simulator(s) + wrangler dev with local D1.",
    )
    ap.add_argument("--exchange", choices=(*EXCHANGES, "both"), default="lighter",
                    help="exchanges the Worker tracks (ENABLED_EXCHANGES; default lighter)")
    ap.add_argument("--port", type=int, default=8787, help="dashboard / Worker port (default 8787)")
    ap.add_argument("--markets", type=int, default=12, help="simulated markets (default 12)")
    ap.add_argument("--rate", type=float, default=20, help="simulated book updates per second (default 20)")
    ap.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    ap.add_argument("--sim-port", type=int, default=None, help="Lighter simulator port (default: a free one)")
    ap.add_argument("--paradex-sim-port", type=int, default=None,
                    help="Paradex simulator port (default: a free one)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--mainnet", action="store_true", help="track real Lighter mainnet (no simulator)")
    src.add_argument("--testnet", action="store_true", help="track real Lighter testnet (no simulator)")
    ap.add_argument("--api-url", help="any Lighter-compatible REST base URL (no simulator)")
    ap.add_argument("--ws-url", help="its WebSocket URL (default: derived from --api-url + /stream)")
    ap.add_argument("--paradex-api-url",
                    help="a Paradex-compatible REST base URL ending in /v1 (no Paradex simulator)")
    ap.add_argument("--paradex-ws-url",
                    help="its SBE WebSocket URL (default: derived from --paradex-api-url, "
                         "api.HOST -> ws.api.HOST, + ?sbeSchemaId=1&sbeSchemaVersion=1)")
    ap.add_argument("--persist", default=str(ROOT / ".wrangler" / "state-dev"),
                    help="local D1 / Durable Object state (default .wrangler/state-dev)")
    ap.add_argument("--fresh", action="store_true", help="delete --persist first")
    ap.add_argument("--admin-token", default="dev-token", help='ADMIN_TOKEN (default "dev-token")')
    ap.add_argument("--var", action="append", default=[], metavar="NAME:VALUE",
                    help="extra wrangler var, repeatable (e.g. WINDOW_SECONDS:5)")
    args = ap.parse_args(argv)
    if (args.mainnet or args.testnet) and (args.api_url or args.ws_url):
        ap.error("--api-url/--ws-url cannot be combined with --mainnet/--testnet")
    if args.ws_url and not args.api_url:
        ap.error("--ws-url needs --api-url")
    if args.paradex_ws_url and not args.paradex_api_url:
        ap.error("--paradex-ws-url needs --paradex-api-url")
    enabled = enabled_exchanges(args.exchange)
    if "lighter" not in enabled and (args.mainnet or args.testnet or args.api_url or args.sim_port):
        ap.error("--mainnet/--testnet/--api-url/--ws-url/--sim-port are Lighter's: add --exchange both")
    if "paradex" not in enabled and (args.paradex_api_url or args.paradex_sim_port):
        ap.error("--paradex-* options need --exchange paradex or both")
    return args


def enabled_exchanges(choice: str) -> list[str]:
    """--exchange lighter|paradex|both -> the ENABLED_EXCHANGES list."""
    return list(EXCHANGES) if choice == "both" else [choice]


def _derive_ws_url(api_url: str) -> str:
    base = api_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + "/stream"
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):] + "/stream"
    raise SystemExit(f"--api-url must start with http:// or https://: {api_url}")


def _derive_paradex_ws_url(api_url: str) -> str:
    """https://api.prod.paradex.trade/v1 -> wss://ws.api.prod.paradex.trade/v1?sbeSchemaId=1&sbeSchemaVersion=1
    (Paradex's socket host is ws.api.{env}); http://127.0.0.1:P/v1 -> ws://127.0.0.1:P/v1?..."""
    from urllib.parse import urlsplit

    parts = urlsplit(api_url.rstrip("/"))
    if parts.scheme not in ("http", "https"):
        raise SystemExit(f"--paradex-api-url must start with http:// or https://: {api_url}")
    host = parts.netloc
    if host.startswith("api."):
        host = "ws." + host
    return f"{'wss' if parts.scheme == 'https' else 'ws'}://{host}{parts.path}{PARADEX_SBE_QUERY}"


def run(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    check_setup()
    persist = Path(args.persist).resolve()
    if args.fresh and persist.exists():
        shutil.rmtree(persist)
    logs = ROOT / ".wrangler" / "logs"
    enabled = enabled_exchanges(args.exchange)
    sim: Simulator | None = None
    px_sim: Simulator | None = None
    api_url = ws_url = px_api_url = px_ws_url = None
    wvars: dict[str, str] = {}
    if "lighter" in enabled:
        if args.mainnet:
            api_url, ws_url = LIGHTER_MAINNET
        elif args.testnet:
            api_url, ws_url = LIGHTER_TESTNET
        elif args.api_url:
            api_url, ws_url = args.api_url.rstrip("/"), args.ws_url or _derive_ws_url(args.api_url)
        else:
            sim = Simulator(logs / "simulator.log", port=args.sim_port, markets=args.markets,
                            rate=args.rate, seed=args.seed, echo=True)
            api_url, ws_url = sim.url, sim.ws_url
        wvars.update({"LIGHTER_API_URL": api_url, "LIGHTER_WS_URL": ws_url})
    if "paradex" in enabled:
        if args.paradex_api_url:
            px_api_url = args.paradex_api_url.rstrip("/")
            px_ws_url = args.paradex_ws_url or _derive_paradex_ws_url(px_api_url)
        else:
            px_sim = Simulator(logs / "simulator-paradex.log", port=args.paradex_sim_port,
                               markets=args.markets, rate=args.rate, seed=args.seed, echo=True,
                               exchange="paradex")
            px_api_url, px_ws_url = px_sim.url, px_sim.ws_url
        wvars.update({"PARADEX_API_URL": px_api_url, "PARADEX_WS_URL": px_ws_url})
    wvars.update({"ENABLED_EXCHANGES": ",".join(enabled), "ADMIN_TOKEN": args.admin_token})
    for item in args.var:
        name, sep, value = item.partition(":")
        if not sep:
            raise SystemExit(f"--var expects NAME:VALUE, got {item!r}")
        wvars[name] = value
    worker = WranglerDev(logs / "wrangler.log", persist_dir=persist, port=args.port, vars=wvars, echo=True)

    stopping = False

    def _on_term(signum, frame):  # SIGTERM/SIGHUP behave like Ctrl-C
        raise KeyboardInterrupt

    # Ctrl-C -> KeyboardInterrupt even when started with SIGINT ignored (background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    try:
        print(f"[run] wrangler d1 migrations apply DB --local --persist-to {persist}", flush=True)
        apply_migrations(persist)
        if sim is not None:
            print(f"[run] starting the Lighter simulator on {sim.url}", flush=True)
            sim.start()
        if px_sim is not None:
            print(f"[run] starting the Paradex simulator on {px_sim.url}", flush=True)
            px_sim.start()
        print(f"[run] starting wrangler dev on {worker.url} (the first request boots Python, ~6 s)", flush=True)
        worker.start()
        print(
            "\n"
            f"  Dashboard:  {worker.url}/\n"
            f"  API:        {worker.url}/api/stats   {worker.url}/api/markets\n"
            + (f"  Lighter:    {api_url}  ({'simulator' if sim else 'remote'})\n" if api_url else "")
            + (f"  Paradex:    {px_api_url}  ({'simulator' if px_sim else 'remote'}; {px_ws_url})\n"
               if px_api_url else "")
            + f"  Exchanges:  {','.join(enabled)}\n"
            f"  Start:      curl -X POST -H 'Authorization: Bearer {args.admin_token}' {worker.url}/api/start\n"
            f"  State:      {persist}\n"
            f"  Logs:       {logs}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for p in (sim, px_sim, worker):
                if p is not None and not p.alive:
                    print(f"[run] {p.name} exited unexpectedly (code {p.proc.returncode}); stopping", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stopping = True
        print("\n[run] stopping ...", flush=True)
        return 0
    except DevStackError as e:
        print(f"[run] ERROR: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        worker.stop()
        for p in (sim, px_sim):
            if p is not None:
                p.stop()
        if stopping:
            print("[run] stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
