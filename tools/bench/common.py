"""Bits shared by the runner and the sharding driver: paths, HTTP, results files, tables."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import devstack

ROOT = devstack.ROOT
RESULTS = ROOT / "bench-results"
ADMIN_TOKEN = "bench-token"


SNAPSHOT_ITEMS = ("wrangler.toml", "schema.sql", "src", "frontend", "python_modules")


def snapshot_tree(dest: Path) -> dict:
    """Copy what `wrangler dev` runs (wrangler.toml, schema, src/, frontend/, python_modules/)
    into `dest`. wrangler dev watches its sources and reloads on any change (a fresh
    workerd, a reset Durable Object): running from a copy keeps other people's edits
    in /work/main from restarting the stack mid-measurement, and pins the code measured."""
    import hashlib
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for item in SNAPSHOT_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignore, symlinks=False)
        else:
            shutil.copy2(src, dest / item)
    digest = hashlib.sha256()
    for path in sorted((dest / "src").rglob("*.py")):
        digest.update(str(path.relative_to(dest)).encode() + b"\0" + path.read_bytes())
    return {"path": str(dest), "src_sha256": digest.hexdigest()[:16]}


def results_dir() -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    # The folder ignores itself: nothing in it is ever committed.
    ignore = RESULTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# benchmark output (python -m bench): never committed\n*\n")
    return RESULTS


def write_results(name: str, data: dict) -> Path:
    """bench-results/<name>.json (latest) plus a timestamped copy; returns the first."""
    out = results_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    (out / "history").mkdir(exist_ok=True)
    (out / "history" / f"{name}-{stamp}.json").write_text(text)
    path = out / f"{name}.json"
    path.write_text(text)
    return path


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception:
            return "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "wrangler": version(devstack.wrangler_argv("--version")),
        "git_head": version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "git_dirty_files": len(version(["git", "-C", str(ROOT), "status", "--porcelain", "src"]).splitlines()),
    }


def http(method: str, url: str, token: str | None = None, timeout: float = 30.0) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def get_json(url: str, timeout: float = 30.0) -> Any:
    status, body = http("GET", url, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} -> {status}: {str(body)[:300]}")
    return body


def table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), line]
    for r in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(out)


def fmt(x: float | int | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"
