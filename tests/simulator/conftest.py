"""Fixtures for the simulator's own tests (tests/simulator/)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for p in (ROOT / "tools", HERE):  # lighter_sim, and simclient beside this file
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from lighter_sim.testing import SimulatorProcess  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "lighter"


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorProcess]]:
    """Factory: start_sim(markets=.., rate=.., seed=.., extra_args=[..]) -> started simulator,
    stopped at the end of the test."""
    started: list[SimulatorProcess] = []

    def _start(**kw) -> SimulatorProcess:
        sim = SimulatorProcess(**kw)
        started.append(sim)
        return sim.start()
    yield _start
    for sim in started:
        sim.__exit__(None, None, None)


@pytest.fixture(scope="module")
def module_sim(request) -> Iterator[SimulatorProcess]:
    """One simulator per test module; a module sets SIM_ARGS = dict(...) to configure it."""
    kw = getattr(request.module, "SIM_ARGS", {})
    with SimulatorProcess(**kw) as sim:
        yield sim
