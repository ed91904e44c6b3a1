"""The mutants module (tests/sim/mutants.py) is well-formed, and the machinery that
plants them works: every mutant applies cleanly to today's code, and a couple are
caught within a few seeds. The full mutation run is `bash scripts/simulate --mutants`,
not part of the suite."""

from __future__ import annotations

import ast

import pytest

import mutants


def test_every_mutant_applies_cleanly_to_todays_code():
    for mutant in mutants.MUTANTS:
        source = mutants.mutated_source(mutant)  # its text occurs once, and the result compiles
        assert ast.dump(ast.parse(source)) != ast.dump(ast.parse((mutants.SRC / mutant.path).read_text())), (
            f"{mutant.name} changes only layout: it plants nothing")


def test_the_list_is_wide_and_every_entry_says_what_it_plants():
    names = [m.name for m in mutants.MUTANTS]
    assert len(names) == len(set(names)), "mutant names must be unique"
    scored = [m for m in mutants.MUTANTS if not m.equivalent]
    assert len(scored) >= 25
    assert {m.layer for m in scored} == set(mutants.LAYERS)
    for m in mutants.MUTANTS:
        assert m.says and "\n" not in m.says, m.name
        assert m.layer in mutants.LAYERS, m.name


def test_a_mutant_that_no_longer_applies_is_refused(tmp_path):
    stale = mutants.Mutant("stale", "feed", "tracker/feed.py", "this text is not in feed.py", "x", "nothing")
    with pytest.raises(mutants.MutantError, match="0 times"):
        mutants.mutated_source(stale)


@pytest.mark.parametrize("name, seeds", [("lighter_nonces_swapped", 2), ("paradex_sides_swapped", 4)])
def test_a_planted_mutant_is_caught_within_a_few_seeds(name, seeds):
    result = mutants.run_planted(mutants.by_name(name), list(range(seeds)), timeout_s=240)
    assert not result.get("error"), result["says"]
    assert result["seed"] is not None, f"{name} survived seeds 0..{seeds - 1}"


def test_the_real_code_survives_the_same_seeds_in_the_planted_copy():
    """The copy itself changes nothing: an equivalent mutant (a no-op for behaviour)
    runs the same seeds without a violation, so a catch above is the mutant's doing."""
    result = mutants.run_planted(mutants.by_name("min_spread_le"), [0, 2], timeout_s=240)
    assert not result.get("error"), result["says"]
    assert result["seed"] is None, result["says"]
