"""DEPLOY.md's statements that the code decides, checked against the code (issue 19,
item 7): each test catches one *kind* of mistake, not one sentence.

- quoted log lines: every `[Component] message { component: … }` line the guide shows
  must be printable by some string of src/ (its literal parts in order; a formatted
  value matches any text), and a URL in it that names a default's host must be that
  default (the feed's URL carries `?readonly=true`);
- health answers: every `"reason": "…"` / `"detail": "…"` the guide quotes must be one
  tracker/health.py can give (a reason, `shard N: ` before it with several shards);
- vars: the guide's list of settings missing from `wrangler.toml [vars]` is exactly
  config.py's settings minus wrangler.toml's vars;
- file references: every `src/…`, `tests/…`, `tools/…`, `scripts/…` path the guide names
  exists, and a `name` said to be in a Python file is defined there;
- exit statuses: the status the guide says a script exits with is the one its failure
  path uses.
(Numbers that come from code, the subscription budget, are marked figures computed
from tracker/pacing.py: tests/unit/test_guide_figures.py.)
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "DEPLOY.md"
SRC = ROOT / "src"


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


# -- the code's strings as patterns ----------------------------------------------------------


def _pattern(node: ast.AST) -> tuple[str, int] | None:
    """A string expression as a regex (literal parts escaped, formatted values as any
    text) and how many literal characters it has."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value), len(node.value)
    if isinstance(node, ast.JoinedStr):
        parts, literal = [], 0
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(re.escape(value.value))
                literal += len(value.value)
            else:
                parts.append(".*?")
        return "".join(parts), literal
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pattern(node.left), _pattern(node.right)
        if left and right:
            return left[0] + right[0], left[1] + right[1]
    return None


def code_patterns(paths, min_literal: int = 8) -> list[re.Pattern]:
    """Every string expression of these files with at least `min_literal` literal
    characters (a bare "{x}" would match anything)."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            got = _pattern(node)
            if got and got[1] >= min_literal:
                found.add(got[0])
    return [re.compile(p, re.S) for p in found]


def printable(text: str, patterns: list[re.Pattern]) -> bool:
    text = re.sub(r"<[^>]+>", "X", text)  # the guide's placeholders: `<error>`
    return any(p.fullmatch(text) for p in patterns)


# -- quoted log lines ----------------------------------------------------------------------------

LOG_LINE = re.compile(r"^(?:.*?\[(?:ERROR|WARNING)\] )?\[(\w+)(?:@\w+)?(?::\d+)?\] (.*?) \{ component: '", re.M)


def quoted_log_lines(text: str) -> list[tuple[str, str]]:
    return [(m.group(0), m.group(2)) for m in LOG_LINE.finditer(text)]


def unprintable_log_lines(text: str, patterns: list[re.Pattern]) -> list[str]:
    return [line for line, message in quoted_log_lines(text) if not printable(message, patterns)]


def test_every_quoted_log_line_is_one_the_code_prints():
    text = guide()
    assert len(quoted_log_lines(text)) >= 20
    wrong = unprintable_log_lines(text, code_patterns(SRC.rglob("*.py")))
    assert not wrong, "log lines no string of src/ prints:\n" + "\n".join(wrong)


def test_the_log_line_check_catches_a_changed_message():
    patterns = code_patterns(SRC.rglob("*.py"))
    good = "[Aggregator] cleaned 12 window, 3 minute and 0 hour rows past retention { component: 'Aggregator' }"
    bad = "[Aggregator] cleaned 12 window rows and 0 minute rows past retention { component: 'Aggregator' }"
    assert unprintable_log_lines(good, patterns) == []
    assert unprintable_log_lines(bad, patterns) == [bad[: bad.index(" { component: '") + len(" { component: '")]]


def _defaults() -> dict[str, str]:
    """The config's default URLs: MAINNET_WS_URL, ... (tracker/config.py constants)."""
    tree = ast.parse((SRC / "tracker" / "config.py").read_text())
    return {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name) and t.id.endswith("_URL")
            and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}


def urls_unlike_defaults(text: str) -> list[str]:
    """URLs in quoted log lines on a default's host and path that are not that default."""
    defaults = list(_defaults().values())
    wrong = []
    for line, _ in quoted_log_lines(text):
        for url in re.findall(r"wss?://\S+|https?://\S+", line):
            base = url.split("?")[0]
            same = [d for d in defaults if d.split("?")[0] == base]
            if same and url not in same:
                wrong.append(f"{url} (the default is {same[0]})")
    return wrong


def test_urls_in_quoted_log_lines_are_the_defaults():
    assert urls_unlike_defaults(guide()) == []
    line = "[Lighter] connecting to wss://mainnet.zklighter.elliot.ai/stream (connection #1) { component: 'Lighter' }"
    assert urls_unlike_defaults(line), "the check misses the default URL without ?readonly=true"


# -- health answers ------------------------------------------------------------------------------


def health_quotes(text: str) -> list[str]:
    section = text[text.index("### Uptime monitor: GET /api/health"):]
    section = section[: section.index("\n### ", 10)]
    return re.findall(r'"(?:reason|detail)": "([^"]*)"', section)


def wrong_health_quotes(quotes: list[str]) -> list[str]:
    patterns = code_patterns([SRC / "tracker" / "health.py"], min_literal=6)
    # _down_reason builds its text in parts: "feed disconnected", ": <error>", " (reconnecting in …)".
    parts = "|".join(p.pattern for p in patterns)
    composed = re.compile(rf"(?:shard \d+: )?(?:{parts})(?::.+?)?(?: \(reconnecting in .+?s\))?", re.S)
    return [q for q in quotes if not composed.fullmatch(re.sub(r"<[^>]+>", "X", q))]


def test_health_answers_quoted_are_the_codes():
    quotes = health_quotes(guide())
    assert len(quotes) >= 6
    assert wrong_health_quotes(quotes) == []
    assert wrong_health_quotes(["tracker unreachable: <error>"]) == ["tracker unreachable: <error>"]


def test_health_answer_keys_quoted_are_the_codes():
    """`"isTracking": null`, `no shards` and the like: the keys the guide says an answer
    has or lacks are the ones health.py's `overall` builds."""
    section = guide()[guide().index("### Uptime monitor: GET /api/health"):]
    section = section[: section.index("\n### ", 10)]
    source = (SRC / "tracker" / "health.py").read_text()
    said = set(re.findall(r'`"(\w+)":', section))
    keys = set(re.findall(r'"(\w+)"', source))
    assert said and said <= keys, f"keys the guide quotes that health.py never writes: {sorted(said - keys)}"


# -- vars ----------------------------------------------------------------------------------------


def config_vars() -> set[str]:
    source = (SRC / "tracker" / "config.py").read_text()
    return set(re.findall(r'(?:text|number|whole|url)\("([A-Z_]+)"', source))


def test_the_vars_left_out_of_wrangler_toml_are_the_ones_the_guide_names():
    text = guide()
    sentence = re.search(r"Vars are strings in `wrangler.toml` `\[vars\]` \(all but (.*?) are there", text, re.S)
    assert sentence, "section 11 says which vars wrangler.toml leaves out"
    said = set(re.findall(r"`([A-Z_]+)`", sentence.group(1)))
    toml_vars = set(tomllib.loads((ROOT / "wrangler.toml").read_text())["vars"])
    secrets = {"ADMIN_TOKEN", "ALERT_WEBHOOK_URL", "READ_TOKEN"}
    assert said == config_vars() - toml_vars - secrets


def test_settings_the_guide_tells_you_to_put_in_vars_are_settings():
    """A `[vars]` line the guide shows (a block headed `# wrangler.toml [vars]`) names a
    setting config.py reads: a misspelled var would be ignored without a word."""
    blocks = re.findall(r"^```(?:toml|sh)?\n# wrangler.toml \[vars\][^\n]*\n(.*?)^```", guide(), re.M | re.S)
    assigned = {name for block in blocks for name in re.findall(r"^([A-Z_]+)\s*=", block, re.M)}
    assert assigned, "the guide shows the Free plan's [vars]"
    assert assigned <= config_vars(), sorted(assigned - config_vars())


# -- files and names the guide refers to ---------------------------------------------------------


def test_files_and_names_the_guide_refers_to_exist():
    text = guide()
    missing = []
    for path in set(re.findall(r"`((?:src|tests|tools|scripts|docs|migrations|frontend)/[\w./-]+?)`", text)):
        if not (ROOT / path.rstrip("/")).exists() and "*" not in path:
            missing.append(path)
    for path, name in re.findall(r"`((?:src|tools|tests)/[\w/]+\.py)` `([A-Za-z_][A-Za-z_0-9]*)`", text):
        if (ROOT / path).exists() and not re.search(rf"^\s*(?:def |class )?{name}\b", (ROOT / path).read_text(), re.M):
            missing.append(f"{path} `{name}`")
    assert not missing, f"DEPLOY.md names what does not exist: {sorted(missing)}"


# -- exit statuses -------------------------------------------------------------------------------


def test_the_exit_status_quoted_for_scripts_setup_is_its_own():
    """scripts/setup fails through `die` (a version mismatch of build_pyodide_bundle.py
    included: `|| die …`)."""
    setup = (ROOT / "scripts" / "setup").read_text()
    die = re.search(r"^die\(\) \{.*?exit (\d+);", setup, re.M)
    assert die and re.search(r"build_pyodide_bundle\.py.*\n?.*\|\| die", setup)
    said = re.findall(r"`scripts/setup`[^.]*?(?:exits|exit status|stops with exit status) (\d+)", guide())
    assert said and set(said) == {die.group(1)}, f"the guide says {said}, scripts/setup exits {die.group(1)}"
