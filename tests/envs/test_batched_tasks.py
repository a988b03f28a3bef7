"""The batched backend's parts that need no simulator (default tier, no warp extra needed):
Gymnasium v5 formulas evaluated on CPU MuJoCo states, per-world model fields against the CPU
wrapper, and bad input refused before MuJoCo Warp is imported or compiles anything."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.seeding import np_random

import rlrobust
from rlrobust.core.errors import ConfigError, MissingDependencyError, PerturbationError
from rlrobust.envs import make_env
from rlrobust.envs.batched.tasks import TASKS
from rlrobust.envs.batched.worlds import GRAVITY, WorldParameters
from rlrobust.evaluation.batched import supported_suites
from rlrobust.interop.policies import ConstantPolicy, LinearPolicy, as_batched_policy

# MuJoCo derives these from masses and inertias (mj_setConst); each world needs its own copy.
DERIVED = {"body_subtreemass", "body_invweight0", "dof_invweight0", "actuator_acc0"}


def _state(env: gym.Env) -> tuple[torch.Tensor, torch.Tensor]:
    data = env.unwrapped.data
    return torch.as_tensor(data.qpos.copy())[None], torch.as_tensor(data.qvel.copy())[None]


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_batched_formulas_reproduce_gymnasium_on_its_own_states(env_id):
    """observe/outcome on Gymnasium's float64 states give Gymnasium's obs, reward and
    termination to rounding, through a termination where the task has one; reset_state draws
    the initial state Gymnasium draws from the same seed."""
    env = gym.make(env_id)
    task = TASKS[env_id](env)
    obs, _ = env.reset(seed=7)
    qpos, qvel = task.reset_state(np_random(7)[0])
    np.testing.assert_allclose(
        task.observe(torch.as_tensor(qpos)[None], torch.as_tensor(qvel)[None])[0], obs, rtol=0, atol=1e-12
    )
    rng = np.random.default_rng(0)
    ended = False
    for _ in range(300):
        x_before = torch.as_tensor([env.unwrapped.data.qpos[0]])
        action = (3.0 * rng.uniform(-1, 1, env.action_space.shape)).astype(np.float32)  # beyond ctrlrange too
        obs, reward, terminated, _, _ = env.step(action)
        qpos, qvel = _state(env)
        np.testing.assert_allclose(task.observe(qpos, qvel)[0], obs, rtol=0, atol=1e-12)
        r, term = task.outcome(x_before, qpos, qvel, torch.as_tensor(action, dtype=torch.float64)[None])
        # Gymnasium sums the squared float32 action in float32: agreement to float32 rounding
        assert float(r[0]) == pytest.approx(reward, rel=1e-6, abs=1e-6) and bool(term[0]) == terminated
        if terminated:
            ended = True
            break
    assert ended or env_id == "HalfCheetah-v5"  # HalfCheetah never terminates


def test_world_rows_equal_the_cpu_wrapper_model_field_by_field():
    settings = [
        {"torso_mass": 1.0, "friction": 0.3},
        {"torso_mass": 2.5, "thigh_mass": 0.7, "gravity": 5.0},
        {},
    ]
    worlds = WorldParameters(gym.make("Hopper-v5"), ["torso_mass", "thigh_mass", "friction", "gravity"])
    assert DERIVED | {"body_mass", "body_inertia", "geom_friction", GRAVITY} <= set(worlds.fields)
    rows = worlds.rows(settings)
    for i, values in enumerate(settings):
        model = make_env("Hopper-v5", {"kind": "static", "values": values}).unwrapped.model
        for field in worlds.fields:
            expected = model.opt.gravity if field == GRAVITY else getattr(model, field)
            np.testing.assert_array_equal(rows[field][i], expected, err_msg=f"world {i} {field}")
    assert np.array_equal(
        worlds.model.body_mass, gym.make("Hopper-v5").unwrapped.model.body_mass
    )  # left nominal


def test_a_parameter_touches_only_its_own_fields():
    env = gym.make("HalfCheetah-v5")
    assert WorldParameters(env, ["friction"]).fields == ("geom_friction",)
    assert WorldParameters(env, ["actuator_strength"]).fields == ("actuator_gainprm",)
    assert WorldParameters(env, ["gravity"]).fields == (GRAVITY,)
    assert DERIVED <= set(WorldParameters(env, ["bthigh_mass"]).fields)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"wing_mass": 1.0}, "unknown parameter 'wing_mass'.*valid: .*'torso_mass'"),
        ({"torso_mass": -1.0}, "torso_mass=-1.0 is not valid.*> 0"),
        ({"friction": -0.1}, "friction=-0.1 is not valid.*>= 0"),
        ({"friction": 3.5}, "outside its box \\[0.1, 3\\]"),
    ],
)
def test_bad_parameters_are_refused_before_warp_is_needed(values, match, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)  # even without the extra, the values fail first
    from rlrobust.envs.batched.warp_env import WarpVectorEnv

    with pytest.raises(PerturbationError, match=match):
        WarpVectorEnv("Hopper-v5", 2, params=values, bounds={"friction": (0.1, 3.0)})


def test_unsupported_tasks_suites_and_backends_name_what_is_supported():
    from rlrobust.envs.batched.warp_env import WarpVectorEnv

    with pytest.raises(
        PerturbationError, match="does not support 'Ant-v5'; supported: 'HalfCheetah-v5', 'Hopper-v5'"
    ):
        WarpVectorEnv("Ant-v5", 2)
    with pytest.raises(PerturbationError, match="does not support suite 'cartpole-2d'.*'hopper-2d'"):
        rlrobust.evaluate(ConstantPolicy([0]), "cartpole-2d", episodes=1, backend="warp")
    with pytest.raises(ConfigError, match="unknown backend 'mjx'; valid: 'cpu', 'warp'"):
        rlrobust.evaluate(ConstantPolicy([0]), "hopper-2d", episodes=1, backend="mjx")
    with pytest.raises(ConfigError, match="2 settings for 3 worlds"):
        WarpVectorEnv("Hopper-v5", 3, params=[{}, {}])
    assert "hopper-2d" in supported_suites() and "ant-2d" not in supported_suites()


def test_without_the_extra_the_warp_backend_fails_at_once_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)
    from rlrobust.envs.batched.warp_env import WarpVectorEnv

    with pytest.raises(MissingDependencyError, match=r"rlrobust\[warp\]"):
        WarpVectorEnv("Hopper-v5", 2)
    with pytest.raises(MissingDependencyError, match=r"rlrobust\[warp\]"):
        rlrobust.evaluate("no/such/checkpoint", "hopper-2d", episodes=1, backend="warp")  # before loading it
    assert issubclass(MissingDependencyError, rlrobust.RlrobustError)


def test_batched_policies_act_row_by_row():
    linear = LinearPolicy(np.arange(6.0).reshape(2, 3) / 10, [0.1, -0.1])
    obs = np.random.default_rng(0).normal(size=(4, 3))
    batch = as_batched_policy(linear)(torch.as_tensor(obs))
    np.testing.assert_array_equal(batch, np.stack([linear(o) for o in obs]))
    assert as_batched_policy(ConstantPolicy([0.5, 0.0]))(obs).shape == (4, 2)


def test_training_backend_and_perturbation_are_checked_before_building_anything(monkeypatch):
    from rlrobust.core.runner import batched_env_factory
    from rlrobust.envs.batched.warp_env import from_perturbation

    assert batched_env_factory({"id": "Hopper-v5", "backend": "cpu"}, None, "cpu") is None
    with pytest.raises(ConfigError, match="unknown env backend 'mjx'; valid: 'cpu', 'warp'"):
        batched_env_factory({"id": "Hopper-v5", "backend": "mjx"}, None, "cpu")
    with pytest.raises(PerturbationError, match="supports perturbation kinds .*DynamicParameterAdversary"):
        from_perturbation("Hopper-v5", 2, {"kind": "dynamic", "suite": "hopper-2d"})
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)
    with pytest.raises(MissingDependencyError, match=r"rlrobust\[warp\]"):
        batched_env_factory({"id": "Hopper-v5", "backend": "warp"}, None, "cpu")
