"""The Worker's API in the simulated world (worker.py, invariants 17-19): seeds it
failed on, and the planted bugs its invariants catch."""

from __future__ import annotations

import pytest

import world as sim_world


@pytest.mark.parametrize("seed", [11, 16])
def test_seeds_that_got_an_undocumented_304_for_a_final_hours_page(seed):
    """/api/hours answers final history like minutes and windows (Cache-Control, an
    ETag, 304 on If-None-Match: tracker/routes.py `_page`), but its OpenAPI entry
    documented neither the 304 nor the cache headers."""
    assert sim_world.run(seed).violations == []
