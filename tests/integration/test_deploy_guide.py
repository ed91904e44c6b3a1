"""DEPLOY.md, walked for real (issue #6).

The guide's commands and expectations are read out of DEPLOY.md itself, so the guide
cannot drift from what the code does:

- section 4: `wrangler d1 migrations apply DB --remote`, the reset statements
  and the old tables' drop, run with `--local --persist-to` into a fresh folder;
- section 7 and 8: the start and every check (`curl … | jq …` as written, with WORKER
  and ADMIN_TOKEN set; the D1 queries with `--remote` turned into `--local
  --persist-to <the session worker's folder>`), each against the `<!-- expect… -->`
  comment that follows it (`out` is the command's output as JSON, `stats` GET
  /api/stats just before);
- section 9: every line of the log story appears in the session worker's output;
- section 11: the configuration table names every var config.py reads, with
  wrangler.toml's defaults;
- section 14: every event it names exists in runtime/log.py;
- docs/api-examples.md: the same examples collected from the session worker have the
  same routes, statuses, headers and JSON keys (tools/api_examples.py).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import tomllib
from contextlib import closing
from pathlib import Path

import pytest

import api_examples
import devstack
from conftest import ADMIN_TOKEN

ROOT = devstack.ROOT
GUIDE = ROOT / "DEPLOY.md"
REMOTE = "npx wrangler d1 execute DB --remote"
MIGRATE = "npx wrangler d1 migrations apply DB --remote"

pytestmark = pytest.mark.timeout(900)

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n(?:\s*\n)*(?:<!-- (expect[\w-]*): (.*?) -->)?", re.M | re.S)


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def section(text: str, start: str, end: str | None) -> str:
    i = text.index(start)
    j = text.index(end, i) if end else len(text)
    return text[i:j]


def blocks(text: str) -> list[dict]:
    """Fenced code blocks, each with the `<!-- expect…: … -->` right after it, if any."""
    return [
        {"lang": m.group(1), "code": m.group(2).strip(), "kind": m.group(3), "expect": m.group(4)}
        for m in _FENCE.finditer(text)
    ]


def checks(text: str) -> list[dict]:
    found = [b for b in blocks(text) if b["kind"] in ("expect", "expect-lines")]
    for b in found:
        assert b["lang"] == "sh" and "\n" not in b["code"], f"a check is one shell line: {b['code']!r}"
    return found


def command_lines(text: str) -> list[str]:
    return [line for b in blocks(text) if b["lang"] == "sh" for line in b["code"].splitlines()]


def local(command: str, persist: Path) -> str:
    """The guide's remote D1 command, against a local folder instead."""
    assert command.startswith((REMOTE, MIGRATE)), command
    return command.replace("--remote", f"--local --persist-to {shlex.quote(str(persist))}", 1)


def shell(command: str, worker=None, timeout: float = 180) -> str:
    env = devstack.tool_env({"CI": "true"})
    if worker is not None:
        env.update(WORKER=worker.url, ADMIN_TOKEN=ADMIN_TOKEN)
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, f"{command}\nexit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def output(stdout: str, kind: str):
    lines = [line for line in stdout.splitlines() if line.strip()]
    if kind == "expect-lines":
        return [json.loads(line) for line in lines]
    return json.loads(stdout)


def run_check(check: dict, worker=None, persist: Path | None = None, stats: dict | None = None) -> None:
    command = check["code"]
    if command.startswith(REMOTE):
        command = local(command, persist)
    out = output(shell(command, worker), check["kind"])
    # Globals, not locals: the expressions' generators must see `out` and `stats` too.
    scope = {"__builtins__": {"len": len, "all": all, "any": any, "zip": zip}, "out": out, "stats": stats}
    ok = eval(check["expect"], scope)
    assert ok, f"DEPLOY.md says to expect `{check['expect']}`\ncommand: {check['code']}\nout: {out}\nstats: {stats}"


@pytest.fixture(scope="module", autouse=True)
def tools():
    missing = [t for t in ("jq", "curl", "bash") if shutil.which(t) is None]
    assert not missing, f"DEPLOY.md's checks need {missing}: apt-get install jq curl"


# -- section 4: schema, reset, re-apply ---------------------------------------------------


@pytest.mark.xdist_group("deploy-guide-migrations")  # its own wrangler d1 commands: no session stack
def test_migrations_apply_resets_and_reapply(tmp_path):
    """Every command of the section runs through wrangler as the guide writes it (the
    migrations thrice, the reset, the old tables' drop, the schema check); what the test
    itself puts into the database and reads back between them goes straight to the local
    D1's SQLite file, with the guide's own schema query: a wrangler run costs seconds."""
    text = section(guide(), "## 4. Create the tables", "## 5.")
    lines = command_lines(text)
    assert lines.count(MIGRATE) == 2, "section 4 applies the migrations (once, then again after the reset)"
    assert not [line for line in lines if "--file=schema.sql" in line], "the guide's path is the migrations"
    reset = next(line for line in lines if line.startswith(REMOTE) and "DROP TABLE IF EXISTS lighter_snapshots" in line)
    older = next(line for line in lines if line.startswith(REMOTE) and "orderbook_snapshots" in line)
    (tables,) = [b for b in blocks(text) if b["kind"] == "expect-schema"]
    persist = tmp_path / "d1"
    four = schema_tables()

    shell(local(MIGRATE, persist))
    out = output(shell(local(tables["code"], persist)), "expect")
    assert eval(tables["expect"], {}, {"out": out}), f"DEPLOY.md expects `{tables['expect']}`, got {out}"
    assert out == four
    schema_query = sql_of(tables["code"])

    def tables_now() -> list[str]:
        with closing(sqlite3.connect(d1_file(persist))) as db:
            return [name for (name,) in db.execute(schema_query)]

    assert tables_now() == four  # the direct read sees what wrangler's did
    # What an earlier deployment may have left behind, and a row that must go.
    with closing(sqlite3.connect(d1_file(persist))) as db, db:
        db.executescript("CREATE TABLE orderbook_snapshots (symbol TEXT); CREATE TABLE orderbook_minutes (symbol TEXT); "
                         "INSERT INTO lighter_markets (market_index, symbol, updated_at) VALUES (0, 'ETH', 0)")
    assert tables_now() == sorted([*four, "orderbook_minutes", "orderbook_snapshots"])
    shell(local(reset, persist))
    shell(local(older, persist))
    assert tables_now() == []
    applied = shell(local(MIGRATE, persist))
    assert "0002_keyed_tables.sql" in applied, "after the reset every migration runs again"
    assert "No migrations to apply" in shell(local(MIGRATE, persist))  # applying again applies nothing
    assert tables_now() == four
    with closing(sqlite3.connect(d1_file(persist))) as db:
        assert db.execute("SELECT COUNT(*) FROM lighter_markets").fetchone() == (0,)


def sql_of(command: str) -> str:
    """The SQL of a `wrangler d1 execute … --command "SQL" | …` line, as the shell passes it."""
    argv = shlex.split(command.split(" | ", 1)[0])
    return argv[argv.index("--command") + 1]


def d1_file(persist: Path) -> Path:
    """The local D1's SQLite file under a `--persist-to` folder (the one database)."""
    (found,) = [p for p in (persist / "v3" / "d1").rglob("*.sqlite") if "metadata" not in p.name]
    return found


def test_the_backup_commands_are_wranglers():
    """Section 4's backup and restore name wrangler's own commands and options."""
    text = section(guide(), "## 4. Create the tables", "## 5.")
    assert "npx wrangler d1 export DB --remote --output=" in text
    assert "npx wrangler d1 time-travel info DB" in text and "npx wrangler d1 time-travel restore DB --bookmark=" in text
    for command, options in (("export", ("--output", "--remote")), ("time-travel restore", ("--bookmark", "--timestamp"))):
        help_text = shell(f"npx wrangler d1 {command} --help")
        assert all(o in help_text for o in options), (command, options)


def schema_tables() -> list[str]:
    """The tables schema.sql creates, read from it."""
    return sorted(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", (ROOT / "schema.sql").read_text()))


# -- sections 7 and 8: start, then the checklist ----------------------------------------------


@pytest.mark.xdist_group("deploy-guide-checklist")  # a story of its own on its worker's stack
def test_start_and_checklist_against_the_worker(worker, simulator):
    text = guide()
    start = checks(section(text, "## 7. Open the page", "## 8."))
    after_10s = checks(section(text, "### After 10 seconds", "### After 1-2 minutes"))
    after_2min = checks(section(text, "### After 1-2 minutes", "## 9."))
    assert len(start) == 1 and len(after_10s) >= 3 and len(after_2min) >= 5
    persist = worker.persist_dir

    # A fresh run, as after a deploy.
    simulator.control("reset")
    assert worker.admin_post("/api/stop").status_code == 200
    run_check(start[0], worker, persist, worker.get_json("/api/stats"))

    worker.wait_json("/api/stats", lambda s: s["connected"] and s["markets"] > 0 and s["validBooks"] == s["markets"],
                     timeout=90)
    for check in after_10s:
        run_check(check, worker, persist, worker.get_json("/api/stats"))

    # Four windows on every shard (so the newest four are this run's), and a minute.
    worker.wait_json("/api/stats", lambda s: all(x["windowsFlushed"] >= 4 for x in s["shards"]), timeout=150)
    worker.wait_json("/api/minutes", lambda b: b["count"] > 0, timeout=90)
    for check in after_2min:
        run_check(check, worker, persist, worker.get_json("/api/stats"))


# -- docs/api-examples.md is current ------------------------------------------------------------


def test_api_examples_are_current(worker, simulator, tmp_path):
    committed = api_examples.DEFAULT_OUT
    assert committed.is_file(), "docs/api-examples.md is missing: bash scripts/api-examples"
    try:
        examples = api_examples.collect(worker.url, ADMIN_TOKEN, simulator.control, log=lambda m: None)
    finally:
        simulator.control("reset")
        worker.admin_post("/api/start")  # leave tracking on, as the other modules expect
    fresh = tmp_path / "api-examples.md"
    fresh.write_text(api_examples.render(examples, "test session"))
    problems = api_examples.compare(api_examples.parse(committed.read_text()), api_examples.parse(fresh.read_text()))
    assert not problems, (
        "docs/api-examples.md no longer matches what the Worker answers; regenerate it with "
        "`bash scripts/api-examples`:\n" + "\n".join(problems)
    )


# -- section 9: the log story (after the examples, whose stop prints "tracking stopped") --------

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_URL = re.compile(r"(?:wss?|https?)://\S+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SHARD = re.compile(r"^\[(\w+):\d+\]")


def _pattern(text: str) -> re.Pattern:
    """A story line's text with its numbers and URLs generalized."""
    parts, last = [], 0
    for m in re.finditer(f"{_URL.pattern}|{_NUMBER.pattern}", text):
        parts.append(re.escape(text[last:m.start()]))
        parts.append(r"\S+" if _URL.fullmatch(m.group()) else r"\d+(?:\.\d+)?")
        last = m.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts))


def test_log_story_is_what_the_worker_prints(worker):
    # Make sure the whole story has been told at least once, even when this test runs
    # alone: a run with flushed windows, then a stop (which also rolls the minute).
    assert worker.admin_post("/api/start").status_code == 200
    worker.wait_json("/api/stats", lambda s: s["connected"] and all(x["windowsFlushed"] >= 2 for x in s["shards"]),
                     timeout=120)
    assert worker.admin_post("/api/stop").status_code == 200
    assert worker.admin_post("/api/start").status_code == 200  # leave tracking on
    story = guide().split("<!-- log-story -->", 1)[1]
    block = blocks(story)[0]
    lines = [line for line in block["code"].splitlines() if line.strip()]
    assert len(lines) >= 10
    # `[Lighter:1] …` (shard 1 of the session's two) tells the same story as `[Lighter] …`.
    printed = [_SHARD.sub(r"[\1]", _ANSI.sub("", p)) for p in worker.log_text().splitlines()]
    missing = []
    for line in lines:
        said, fields = line.split(" { ", 1)
        event = re.search(r"event: '(\w+)'", fields).group(1)
        pattern = _pattern(said)
        if not any(pattern.match(p) and f"event: '{event}'" in p for p in printed):
            missing.append(line)
    assert not missing, "story lines DEPLOY.md shows that the worker never printed:\n" + "\n".join(missing)


# -- section 11 and 14: configuration and events --------------------------------------------------


def test_configuration_table_names_every_var_with_its_default():
    text = guide().split("<!-- config-table -->", 1)[1].lstrip("\n")
    rows = {}
    for line in text.splitlines()[2:]:  # after the header and its separator
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    source = (ROOT / "src" / "tracker" / "config.py").read_text()
    read = set(re.findall(r'(?:text|number|whole|url|shards)\("([A-Z_]+)"', source))
    assert read and set(rows) == read, f"table {sorted(rows)} vs config.py {sorted(read)}"
    toml_vars = tomllib.loads((ROOT / "wrangler.toml").read_text())["vars"]
    for name, value in toml_vars.items():
        assert rows[name][1] == "var" and rows[name][2] == f"`{value}`", (name, rows[name], value)
    for name in ("ADMIN_TOKEN", "ALERT_WEBHOOK_URL"):
        assert rows[name][1] == "secret"


def _events() -> set[str]:
    """Every event the code logs, named where it is logged: `log(level, component,
    event, message)`, `log.info(component, event, message)`, and the Worker's and the
    hub's `emit(level, component, message, event=...)` (every file of src/)."""
    events = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            args = node.args
            if name in ("log", "_log") and len(args) == 4 and isinstance(args[2], ast.Constant):
                events.add(args[2].value)
            elif name in ("info", "warn", "error") and len(args) == 3 and isinstance(args[1], ast.Constant):
                events.add(args[1].value)
            if name == "emit" and len(args) >= 5 and isinstance(args[4], ast.Constant) and args[4].value:
                events.add(args[4].value)  # emit(level, component, message, shard, event)
            for keyword in node.keywords:
                if keyword.arg == "event" and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                    events.add(keyword.value.value)
    assert len(events) > 20, f"found only {sorted(events)}: has the logging style changed?"
    return events


def test_events_the_guide_names_exist():
    text = guide()
    known = _events()
    listed = set(re.findall(r"`([a-z_0-9]+)`", section(text, "the Worker's and the hub's included):", "Worth an alert")))
    shown = set(re.findall(r"event: '(\w+)'", text))
    assert listed == known, f"section 14 lists {sorted(listed ^ known)} differently from the code's log calls"
    assert shown <= known, f"log lines in DEPLOY.md with unknown events: {sorted(shown - known)}"
