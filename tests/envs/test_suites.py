"""Suites: RRLS boxes, grids with both bounds, seeded samples, lazy construction."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rlrobust.core.errors import PerturbationError
from rlrobust.envs import get_suite, list_suites, perturbable_parameters


def test_registered_ids():
    ids = list_suites()
    for task in ("ant", "halfcheetah", "hopper", "walker2d", "humanoidstandup"):
        assert {f"{task}-1d", f"{task}-2d", f"{task}-3d"} <= set(ids)
    assert {"invertedpendulum-1d", "invertedpendulum-2d", "cartpole-2d", "pendulum-1d"} <= set(ids)
    assert ids == sorted(ids)


def test_rrls_boxes():
    """The M2TD3/RRLS sets (Tanabe et al. 2022), under our parameter names."""
    assert dict(get_suite("hopper-3d").bounds) == {
        "friction": (0.1, 3.0),
        "torso_mass": (0.1, 3.0),
        "thigh_mass": (0.1, 4.0),
    }
    assert dict(get_suite("halfcheetah-1d").bounds) == {"friction": (0.1, 3.0)}
    assert dict(get_suite("halfcheetah-2d").bounds) == {"friction": (0.1, 4.0), "torso_mass": (0.1, 7.0)}
    assert dict(get_suite("invertedpendulum-2d").bounds) == {
        "pole_mass": (1.0, 31.0),
        "cart_mass": (1.0, 11.0),
    }
    assert dict(get_suite("ant-2d").bounds) == {"torso_mass": (0.1, 3.0), "front_left_leg_mass": (0.01, 3.0)}
    assert get_suite("walker2d-3d").names == ("friction", "torso_mass", "thigh_mass")


# The published M2TD3/RRLS Hopper box leaves the nominal torso (3.67) and thigh (4.06) above it.
OUTSIDE = {("Hopper-v5", "torso_mass"), ("Hopper-v5", "thigh_mass")}


@pytest.mark.parametrize(
    "suite_id",
    [
        "hopper-3d",
        "walker2d-3d",
        "halfcheetah-3d",
        "ant-3d",
        "humanoidstandup-3d",
        "invertedpendulum-2d",
        "cartpole-2d",
        "pendulum-1d",
    ],
)
def test_every_box_names_real_parameters_and_contains_the_nominal_model(suite_id):
    suite = get_suite(suite_id)
    nominal = perturbable_parameters(suite.env_id)
    for name, (lo, hi) in suite.bounds.items():
        assert name in nominal
        if (suite.env_id, name) in OUTSIDE:
            assert nominal[name] > hi
        else:
            assert lo < nominal[name] < hi, (name, lo, nominal[name], hi)


def test_grid_includes_both_bounds_of_every_dimension():
    suite = get_suite("hopper-2d")
    grid = suite.grid()
    assert len(grid) == 100
    for name, (lo, hi) in suite.bounds.items():
        values = sorted({p[name] for p in grid})
        assert len(values) == 10
        assert values[0] == lo and values[-1] == hi  # RRLS's arange would stop below hi
        np.testing.assert_allclose(np.diff(values), (hi - lo) / 9)
    assert grid[0] == {"friction": 0.1, "torso_mass": 0.1}
    assert grid[1]["friction"] == 0.1 and grid[1]["torso_mass"] > 0.1  # first dimension slowest
    assert len(get_suite("hopper-3d").grid(3)) == 27
    with pytest.raises(PerturbationError, match="points_per_dim must be >= 2"):
        suite.grid(1)


def test_sample_is_seeded_and_inside_the_box():
    suite = get_suite("walker2d-3d")
    a, b, c = suite.sample(50, seed=1), suite.sample(50, seed=1), suite.sample(50, seed=2)
    assert a == b and a != c
    for point in a:
        for name, (lo, hi) in suite.bounds.items():
            assert lo <= point[name] <= hi


def test_unknown_suite_lists_valid_ids():
    with pytest.raises(PerturbationError, match=r"unknown suite 'hoper-2d'; valid: .*'hopper-2d'"):
        get_suite("hoper-2d")


def test_importing_builds_no_environment():
    """RRLS builds ~5.7k MuJoCo envs on import; we build none (MuJoCo is not even imported)."""
    code = (
        "import sys, rlrobust, rlrobust.envs, rlrobust.envs.suites, rlrobust.evaluation; "
        "rlrobust.envs.list_suites(); rlrobust.envs.get_suite('hopper-3d').grid(); "
        "print('mujoco' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
