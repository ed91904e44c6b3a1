"""scripts/test's `--dist loadgroup` keeps a group on one worker (tests/conftest.py).

A file's tests are one story over the worker's stack, and the modules that share the
private stack (PRIVATE_GROUP) must start it once: with pytest 9.2, xdist's own hook no
longer marks the groups (pytest-xdist issue #1386) and the tests were handed out one by
one. This runs a small suite under the project's conftest and says where each test ran.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STORY = '''
import pytest

@pytest.mark.parametrize("path", ["/api/stats", "/api/hours", "/api/minutes", "/api/markets"])
def test_route(path):
    pass

def test_after():
    pass
'''
SHARED = '''
import pytest
pytestmark = pytest.mark.xdist_group("shared")

@pytest.mark.parametrize("n", range(3))
def test_shared(n):
    pass
'''


def run_suite(tmp_path: Path, workers: int, options: list[str]) -> str:
    """Run the small suite in `tmp_path` under the project's conftest (the only plugin:
    xdist; the others, schemathesis, hypothesis..., take seconds to load in each worker),
    verbose; its output."""
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-n", str(workers), *options, "-v", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", "/dev/null",
         "-o", f"pythonpath={ROOT / 'src'} {ROOT / 'tools'}", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "LOT_ARTIFACTS": str(tmp_path / "artifacts")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_a_group_runs_on_one_worker(tmp_path):
    (tmp_path / "test_story.py").write_text(STORY)
    (tmp_path / "test_first.py").write_text(SHARED)
    (tmp_path / "test_second.py").write_text(SHARED.replace("test_shared", "test_shared_too"))
    stdout = run_suite(tmp_path, 2, ["--dist", "loadgroup"])
    ran = re.findall(r"\[(gw\d+)\] \[\s*\d+%\] PASSED (test_\w+)\.py::\S+", stdout)
    assert len(ran) == 11, stdout[-3000:]
    workers: dict[str, set[str]] = {}
    for worker, module in ran:
        group = "shared" if module in ("test_first", "test_second") else module
        workers.setdefault(group, set()).add(worker)
    assert workers.keys() == {"test_story", "shared"}
    assert all(len(w) == 1 for w in workers.values()), workers


LONG = '''
def test_story():
    pass
'''
MANY = '''
import pytest

@pytest.mark.parametrize("n", range(20))
def test_many(n):
    pass
'''


def test_the_longest_groups_are_handed_out_first(tmp_path):
    """tests/conftest.py sorts the groups by LONGEST_GROUPS; xdist's default
    (--loadscope-reorder) then re-sorted them by how many tests each has, so the one-test
    stories, the longest, started last and stretched the run. scripts/test turns that off."""
    options = re.search(r'pytest -n "\$\{TEST_WORKERS:-4\}" (.*?) \\', (ROOT / "scripts" / "test").read_text()).group(1)
    assert "--no-loadscope-reorder" in options.split()
    (tmp_path / "test_tracking.py").write_text(LONG)  # the first of LONGEST_GROUPS
    (tmp_path / "test_aaa_many.py").write_text(MANY)
    stdout = run_suite(tmp_path, 1, options.split())
    ran = re.findall(r"\[gw\d+\] \[\s*\d+%\] PASSED (test_\w+)\.py::", stdout)
    assert len(ran) == 21 and ran[0] == "test_tracking", ran
