"""Named physical parameters: nominal values, exact restore (F2), nominal identity (F3),
effectiveness (F4), consistency of mass/inertia/derived constants, classic-control physics."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from rlrobust.envs import (
    DynamicParameterAdversary,
    ParameterPerturbation,
    get_suite,
    list_suites,
    perturbable_parameters,
)

MUJOCO_IDS = [
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "InvertedPendulum-v5",
    "HumanoidStandup-v5",
]
CLASSIC_IDS = ["CartPole-v1", "Pendulum-v1"]


def float_arrays(model) -> dict[str, np.ndarray]:
    """Every float array of an MjModel, including ``opt``/``stat``/``vis`` fields."""
    out = {}
    for owner, prefix in (
        (model, ""),
        (model.opt, "opt."),
        (model.stat, "stat."),
        (model.vis.global_, "vis."),
    ):
        for name in dir(owner):
            if name.startswith("_"):
                continue
            try:
                value = getattr(owner, name)
            except Exception:
                continue
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" or isinstance(value, float):
                out[prefix + name] = np.array(value, copy=True)
    return out


def rollout(env: gym.Env, seed: int, steps: int, params: dict | None = None) -> np.ndarray:
    """Observations of ``steps`` steps under a seeded action sequence (optionally reset with params)."""
    rng = np.random.default_rng(seed)
    options = None if params is None else {"params": params}
    obs, _ = env.reset(seed=seed, options=options)
    out = [obs]
    space = env.action_space
    for _ in range(steps):
        if isinstance(space, gym.spaces.Discrete):
            action = int(rng.integers(space.n))
        else:
            action = rng.uniform(space.low, space.high).astype(space.dtype)
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append(np.append(obs, reward))
        if terminated or truncated:
            break
    return np.concatenate([np.ravel(o) for o in out])


def test_nominal_values_are_read_from_the_model():
    env = gym.make("Hopper-v5")
    model = env.unwrapped.model
    nominal = perturbable_parameters("Hopper-v5")
    assert nominal["torso_mass"] == model.body_mass[model.body("torso").id]
    assert nominal["foot_mass"] == model.body_mass[model.body("foot").id]
    assert nominal["friction"] == model.geom_friction[model.geom("floor").id, 0] == 1.0
    assert nominal["gravity"] == pytest.approx(9.81)
    assert nominal["actuator_strength"] == nominal["joint_damping"] == 1.0
    assert perturbable_parameters("CartPole-v1") == {
        "gravity": 9.8,
        "masscart": 1.0,
        "masspole": 0.1,
        "length": 0.5,
        "force_mag": 10.0,
    }
    assert perturbable_parameters("Pendulum-v1") == {"m": 1.0, "l": 1.0, "g": 10.0, "max_torque": 2.0}
    # InvertedPendulum has no floor contact: no friction parameter is offered.
    assert "friction" not in perturbable_parameters("InvertedPendulum-v5")


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_restore_to_nominal_equals_a_fresh_model(env_id):
    """F2: after perturbing every parameter and stepping, a reset leaves every float array of
    MjModel (derived constants included) bitwise equal to a freshly made env's."""
    fresh = float_arrays(gym.make(env_id).unwrapped.model)
    nominal = perturbable_parameters(env_id)
    box = {k: (0.5 * v, 2.0 * v) for k, v in nominal.items()}
    env = DynamicParameterAdversary(gym.make(env_id), box, adversary="random")
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    assert float_arrays(env.unwrapped.model).keys() == fresh.keys()
    assert any(not np.array_equal(v, fresh[k]) for k, v in float_arrays(env.unwrapped.model).items())
    env.reset(seed=1)
    after = float_arrays(env.unwrapped.model)
    diff = [k for k in fresh if not np.array_equal(after[k], fresh[k], equal_nan=True)]
    assert diff == []
    # Same through ParameterPerturbation: set everything, then set the nominal values back.
    static = ParameterPerturbation(gym.make(env_id), **{k: 2.0 * v for k, v in nominal.items()})
    static.set_params(**nominal)
    after = float_arrays(static.unwrapped.model)
    assert [k for k in fresh if not np.array_equal(after[k], fresh[k], equal_nan=True)] == []


@pytest.mark.parametrize("env_id", MUJOCO_IDS + CLASSIC_IDS)
def test_nominal_setting_replays_the_bare_env(env_id):
    """F3: a wrapper at the nominal setting gives a bitwise identical trajectory."""
    bare = rollout(gym.make(env_id), seed=3, steps=40)
    wrapped = ParameterPerturbation(gym.make(env_id))
    assert np.array_equal(rollout(wrapped, seed=3, steps=40), bare)
    # explicit nominal values, after a perturbed episode
    wrapped.set_params(**{k: 0.75 * v for k, v in wrapped.nominal_params().items()})
    rollout(wrapped, seed=3, steps=5)
    wrapped.set_params(**wrapped.nominal_params())
    assert np.array_equal(rollout(wrapped, seed=3, steps=40), bare)


def _declared() -> list[tuple[str, str, float]]:
    """(env_id, name, value): both bounds of every suite dimension, and 0.5x/2x of every parameter."""
    cases = set()
    for suite_id in list_suites():
        suite = get_suite(suite_id)
        if suite.disruption is not None:  # its box is over a disruption's strength, not physics
            continue
        for name, (lo, hi) in suite.bounds.items():
            cases |= {(suite.env_id, name, lo), (suite.env_id, name, hi)}
    for env_id in MUJOCO_IDS + CLASSIC_IDS:
        for name, value in perturbable_parameters(env_id).items():
            cases.add((env_id, name, 0.5 * value))
            if name != "max_torque":  # Pendulum's limit may only shrink (tested in test_perturbation)
                cases.add((env_id, name, 2.0 * value))
    return sorted(cases)


def test_every_declared_parameter_changes_the_trajectory_within_10_steps():
    """F4 (RRLS test_effective_parameters): each parameter at each bound has an effect."""
    envs: dict[str, ParameterPerturbation] = {}
    inert = []
    for env_id, name, value in _declared():
        if env_id not in envs:
            envs[env_id] = ParameterPerturbation(gym.make(env_id))
        env = envs[env_id]
        nominal = rollout(env, seed=0, steps=10, params={})
        perturbed = rollout(env, seed=0, steps=10, params={name: value})
        n = min(len(nominal), len(perturbed))
        if len(nominal) == len(perturbed) and np.max(np.abs(nominal[:n] - perturbed[:n])) < 1e-6:
            inert.append((env_id, name, value))
    assert inert == []


def test_mass_scales_inertia_and_updates_derived_constants():
    env = ParameterPerturbation(gym.make("Hopper-v5"))
    model = env.unwrapped.model
    torso = model.body("torso").id
    m0, i0 = float(model.body_mass[torso]), model.body_inertia[torso].copy()
    acc0 = model.actuator_acc0.copy()
    env.set_params(torso_mass=2 * m0)
    assert model.body_mass[torso] == 2 * m0
    np.testing.assert_allclose(model.body_inertia[torso], 2 * i0, rtol=1e-12)
    # subtree masses recomputed (reference: sum over each body's subtree from the parent ids)
    expected = model.body_mass.copy()
    for b in range(model.nbody - 1, 0, -1):
        expected[model.body_parentid[b]] += expected[b]
    np.testing.assert_allclose(model.body_subtreemass, expected, rtol=1e-12)
    assert not np.array_equal(model.actuator_acc0, acc0)


def test_friction_scales_robot_and_floor_geoms():
    """The Hopper's foot (2.0) dominates the floor (1.0) under MuJoCo's max rule, so friction
    must scale both or low values would be inert."""
    env = ParameterPerturbation(gym.make("Hopper-v5"))
    model = env.unwrapped.model
    env.set_params(friction=0.2)
    assert model.geom_friction[model.geom("floor").id, 0] == pytest.approx(0.2)
    assert model.geom_friction[model.geom("foot_geom").id, 0] == pytest.approx(0.4)
    # torsional/rolling coefficients untouched
    assert model.geom_friction[model.geom("foot_geom").id, 1] == pytest.approx(0.005)


def test_gravity_actuator_and_damping():
    env = ParameterPerturbation(gym.make("HalfCheetah-v5"))
    model = env.unwrapped.model
    env.set_params(gravity=4.905, actuator_strength=0.5, joint_damping=3.0)
    np.testing.assert_allclose(model.opt.gravity, [0, 0, -4.905])
    np.testing.assert_allclose(model.actuator_gainprm[:, 0], 0.5)
    np.testing.assert_allclose(model.dof_damping, 3.0 * np.array([0, 0, 0, 6, 4.5, 3, 4.5, 3, 1.5]))


def cartpole_step(state, action, masspole, masscart, length, force_mag, gravity, tau=0.02):
    """Reference CartPole dynamics (Barto et al. 1983, Florian's correction; Euler), written here."""
    x, x_dot, theta, theta_dot = state
    force = force_mag if action == 1 else -force_mag
    total = masspole + masscart
    pml = masspole * length
    temp = (force + pml * theta_dot**2 * math.sin(theta)) / total
    theta_acc = (gravity * math.sin(theta) - math.cos(theta) * temp) / (
        length * (4.0 / 3.0 - masspole * math.cos(theta) ** 2 / total)
    )
    x_acc = temp - pml * theta_acc * math.cos(theta) / total
    return np.array(
        [x + tau * x_dot, x_dot + tau * x_acc, theta + tau * theta_dot, theta_dot + tau * theta_acc]
    )


def test_cartpole_parameters_follow_reference_dynamics():
    params = {"masspole": 0.7, "masscart": 2.0, "length": 1.2, "force_mag": 7.0, "gravity": 11.0}
    env = ParameterPerturbation(gym.make("CartPole-v1"), **params)
    obs, _ = env.reset(seed=5)
    state = obs.astype(np.float64)
    for action in [1, 0, 0, 1, 1, 1, 0]:
        state = cartpole_step(state, action, **params)
        obs, *_ = env.step(action)
        np.testing.assert_allclose(obs, state, rtol=1e-5, atol=1e-6)
        state = obs.astype(np.float64)


def test_pendulum_parameters_follow_reference_dynamics():
    env = ParameterPerturbation(gym.make("Pendulum-v1"), m=2.0, l=0.5, g=9.0, max_torque=1.0)
    env.reset(seed=1)
    th, thdot = env.unwrapped.state
    env.step(np.array([1.5], np.float32))  # clipped to max_torque = 1.0
    u = 1.0
    new_thdot = np.clip(thdot + (3 * 9.0 / (2 * 0.5) * np.sin(th) + 3.0 / (2.0 * 0.5**2) * u) * 0.05, -8, 8)
    np.testing.assert_allclose(env.unwrapped.state, [th + new_thdot * 0.05, new_thdot], rtol=1e-6)


def test_friction_acts_where_a_floor_only_write_is_inert():
    """RRLS defect 4: the Hopper's foot (2.0) dominates a floor of 1.0-2.0 under the max rule, so
    writing the floor alone changes nothing; scaling every geom does."""
    bare = rollout(gym.make("Hopper-v5"), seed=0, steps=30)
    floor_only = gym.make("Hopper-v5")
    model = floor_only.unwrapped.model
    model.geom_friction[model.geom("floor").id, 0] = 1.8
    np.testing.assert_array_equal(rollout(floor_only, seed=0, steps=30), bare)
    ours = rollout(ParameterPerturbation(gym.make("Hopper-v5"), friction=1.8), seed=0, steps=30)
    assert len(ours) != len(bare) or np.max(np.abs(ours - bare)) > 1e-6
