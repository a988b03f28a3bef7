"""Perturbation wrappers: env checkers (F1), seeded sampling (F5), bad input (F6), copies (F7),
action adversaries against seeded expected sequences (F8), forces, dynamic adversary, make_env."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import rlrobust
from rlrobust.core.errors import ConfigError, PerturbationError, SpaceError
from rlrobust.core.seeding import spawn_seeds
from rlrobust.envs import (
    DynamicParameterAdversary,
    ExternalForceAdversary,
    NoisyActionAdversary,
    ParameterPerturbation,
    ProbabilisticActionAdversary,
    get_suite,
    make_env,
)
from rlrobust.envs.perturbation import SequenceSampler, UniformSampler

CONF = Path(rlrobust.__file__).resolve().parent.parent / "conf" / "perturbation"


def _actions(env: gym.Env, n: int, seed: int = 0) -> list:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


# -- F1: checkers ------------------------------------------------------------------------------

CHECKED = [
    ("Hopper-v5", {"kind": "random", "suite": "hopper-2d"}),
    ("Hopper-v5", {"kind": "dynamic", "suite": "hopper-2d", "adversary": "random"}),
    ("Hopper-v5", {"kind": "force", "bodies": ["foot"], "axes": "xz", "adversary": "random"}),
    ("Pendulum-v1", {"kind": "noisy_action", "alpha": 0.3}),
    ("CartPole-v1", {"kind": "probabilistic_action", "alpha": 0.3}),
    ("CartPole-v1", [{"kind": "random", "suite": "cartpole-2d"}, {"kind": "probabilistic_action"}]),
]


@pytest.mark.parametrize("env_id,perturbation", CHECKED)
def test_gymnasium_and_sb3_env_checkers_pass(env_id, perturbation):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    bare = gym.make(env_id)
    env = make_env(env_id, perturbation)
    assert env.observation_space == bare.observation_space
    assert env.action_space == bare.action_space
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)


# -- F5: seeded sampling -----------------------------------------------------------------------


def _param_sequence(env: gym.Env, seed: int, episodes: int) -> list[dict]:
    out = [env.reset(seed=seed)[1]["params"]]
    out += [env.reset()[1]["params"] for _ in range(episodes - 1)]
    return out


def test_domain_randomization_is_seeded_bounded_and_reported():
    suite = get_suite("hopper-2d")
    env = make_env("Hopper-v5", {"kind": "random", "suite": "hopper-2d"})
    first = _param_sequence(env, seed=11, episodes=5)
    again = _param_sequence(env, seed=11, episodes=5)
    other = _param_sequence(env, seed=12, episodes=5)
    assert first == again
    assert first != other
    assert len({p["torso_mass"] for p in first}) == 5
    for params in first + other:
        for name, (lo, hi) in suite.bounds.items():
            assert lo <= params[name] <= hi
    # the reported values are the ones in the model, and stay reported at every step
    env.reset(seed=3)
    params = env.get_wrapper_attr("get_params")()
    _, _, _, _, info = env.step(np.zeros(3))
    model = env.unwrapped.model
    assert info["params"]["torso_mass"] == params["torso_mass"] == model.body_mass[model.body("torso").id]
    # reference draw: the wrapper's own generator (stream 0 of the reset seed), never np.random
    rng = np.random.default_rng(spawn_seeds(11, 4)[0])
    expected = {k: rng.uniform(lo, hi) for k, (lo, hi) in suite.bounds.items()}
    assert first[0] == pytest.approx(expected, rel=0, abs=0)


def test_sequence_sampler_draws_listed_points_and_fixed_values_persist():
    points = [{"masspole": 0.2}, {"masspole": 0.4}]
    env = ParameterPerturbation(gym.make("CartPole-v1"), sampler=SequenceSampler(points), length=0.8)
    seen = [env.reset(seed=0)[1]["params"]] + [env.reset()[1]["params"] for _ in range(19)]
    rng = np.random.default_rng(spawn_seeds(0, 4)[0])
    assert seen == [{"length": 0.8, **points[int(rng.integers(2))]} for _ in range(20)]
    assert {s["masspole"] for s in seen} == {0.2, 0.4}
    assert env.unwrapped.polemass_length == pytest.approx(seen[-1]["masspole"] * 0.8)
    # options override for one episode only
    _, info = env.reset(options={"params": {"masspole": 0.9}})
    assert info["params"] == {"length": 0.8, "masspole": 0.9}
    assert env.unwrapped.masspole == 0.9


def test_global_numpy_rng_is_not_used():
    env = make_env("CartPole-v1", {"kind": "random", "suite": "cartpole-2d"})
    np.random.seed(0)
    a = _param_sequence(env, seed=5, episodes=3)
    np.random.seed(999)
    b = _param_sequence(env, seed=5, episodes=3)
    assert a == b


# -- F6: bad input -----------------------------------------------------------------------------


def test_bad_input_raises_at_construction_listing_valid_choices():
    with pytest.raises(PerturbationError, match=r"unknown parameter 'torso_mas'.*'torso_mass'"):
        ParameterPerturbation(gym.make("Hopper-v5"), torso_mas=3.0)
    with pytest.raises(PerturbationError, match=r"outside its box \[0.1, 3\]"):
        make_env("Hopper-v5", {"kind": "static", "suite": "hopper-2d", "values": {"torso_mass": 3.5}})
    with pytest.raises(PerturbationError, match=r"not a MuJoCo env"):
        ParameterPerturbation(gym.make("CartPole-v1"), torso_mass=1.0)
    with pytest.raises(PerturbationError, match=r"unknown suite 'hopper-4d'.*'hopper-3d'"):
        make_env("Hopper-v5", {"kind": "random", "suite": "hopper-4d"})
    with pytest.raises(PerturbationError, match=r"suite 'cartpole-2d' is for CartPole-v1"):
        make_env("Hopper-v5", {"kind": "random", "suite": "cartpole-2d"})
    with pytest.raises(PerturbationError, match=r"must be finite and > 0"):
        ParameterPerturbation(gym.make("Hopper-v5"), torso_mass=-1.0)
    with pytest.raises(PerturbationError, match=r"max_torque=4.0.*<= 2"):
        ParameterPerturbation(gym.make("Pendulum-v1"), max_torque=4.0)
    with pytest.raises(PerturbationError, match=r"no named physical parameters"):
        ParameterPerturbation(gym.make("MountainCar-v0"))
    with pytest.raises(PerturbationError, match=r"unknown or missing bodies \['hand'\].*'foot'"):
        ExternalForceAdversary(gym.make("Hopper-v5"), ["hand"])
    with pytest.raises(PerturbationError, match=r"low 3 > high 1"):
        DynamicParameterAdversary(gym.make("Hopper-v5"), {"torso_mass": (3.0, 1.0)})
    with pytest.raises(PerturbationError, match=r"already has a parameter wrapper"):
        DynamicParameterAdversary(ParameterPerturbation(gym.make("Hopper-v5")), {"torso_mass": (1.0, 3.0)})
    with pytest.raises(ConfigError, match=r"unknown perturbation kind 'domain'.*'random'"):
        make_env("Hopper-v5", {"kind": "domain"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'alpah'.*'alpha'"):
        make_env("Pendulum-v1", {"kind": "noisy_action", "alpah": 0.1})
    with pytest.raises(ConfigError, match=r"alpha must lie in \[0, 1\]"):
        NoisyActionAdversary(gym.make("Pendulum-v1"), alpha=1.5)
    with pytest.raises(SpaceError, match=r"blends continuous actions"):
        NoisyActionAdversary(gym.make("CartPole-v1"))


# -- F7: copies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id,values", [("Hopper-v5", {"torso_mass": 1.5, "friction": 0.3}), ("CartPole-v1", {"masspole": 0.5})]
)
def test_deepcopy_and_pickle_replay_identically(env_id, values):
    env = ParameterPerturbation(gym.make(env_id), **values)
    actions = _actions(env, 30, seed=1)

    def replay(e):
        obs = [e.reset(seed=4)[0]]
        obs += [e.step(a)[0] for a in actions]
        return np.array(obs)

    reference = replay(env)
    for clone in (copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
        assert clone.get_params() == env.get_params()
        np.testing.assert_array_equal(replay(clone), reference)
    # the clone is independent: perturbing it leaves the original alone
    clone = copy.deepcopy(env)
    clone.set_params(**{next(iter(values)): 0.9 * next(iter(values.values()))})
    np.testing.assert_array_equal(replay(env), reference)


# -- F8: action adversaries against seeded expected sequences ------------------------------------


class RecordingEnv(gym.Env):
    """Records the executed actions (Gymnasium's GenericTestEnv idea)."""

    def __init__(self, action_space: gym.Space) -> None:
        self.action_space = action_space
        self.observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.executed: list = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.executed.append(np.copy(action))
        return np.zeros(1, np.float32), 1.0, False, False, {}


def test_noisy_action_blends_with_a_seeded_random_adversary():
    space = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)
    env = NoisyActionAdversary(RecordingEnv(space), alpha=0.25)
    env.reset(seed=9)
    agent = [np.full(3, 0.5 * i, np.float32) for i in range(-2, 3)]
    infos = [env.step(a)[-1] for a in agent]
    rng = np.random.default_rng(spawn_seeds(9, 4)[3])
    expected = [0.75 * a + 0.25 * rng.uniform(space.low, space.high) for a in agent]
    np.testing.assert_allclose(np.array(env.unwrapped.executed), np.array(expected), rtol=1e-6)
    np.testing.assert_allclose(infos[0]["executed_action"], expected[0], rtol=1e-6)
    assert infos[0]["adversarial_reward"] == -1.0


def test_noisy_action_with_a_policy_adversary_and_a_held_action():
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    env = NoisyActionAdversary(RecordingEnv(space), alpha=0.5, adversary=lambda obs: np.array([1.0, -1.0]))
    env.reset(seed=0)
    env.step(np.array([0.0, 0.0], np.float32))
    env.set_adversary(None)
    env.set_adversary_action([-1.0, -1.0])
    env.step(np.array([1.0, 1.0], np.float32))
    np.testing.assert_allclose(env.unwrapped.executed, [[0.5, -0.5], [0.0, 0.0]])


@pytest.mark.parametrize("space", [gym.spaces.Discrete(4), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)])
def test_probabilistic_action_switches_with_probability_alpha(space):
    env = ProbabilisticActionAdversary(RecordingEnv(space), alpha=0.3)
    env.reset(seed=21)
    space.seed(5)  # the agent's actions were this test's only unseeded randomness
    agent = [space.sample() for _ in range(200)]
    for a in agent:
        env.step(a)
    rng = np.random.default_rng(spawn_seeds(21, 4)[3])
    expected = []
    for a in agent:
        if rng.random() < 0.3:
            a = (
                int(rng.integers(space.n))
                if isinstance(space, gym.spaces.Discrete)
                else rng.uniform(-1, 1, (2,))
            )
        expected.append(a)
    executed = env.unwrapped.executed
    for got, want in zip(executed, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    switched = sum(not np.array_equal(g, a) for g, a in zip(executed, agent))
    assert 30 <= switched <= 90  # ~ alpha * 200 = 60 (Discrete may switch to the same action)


# -- forces and the dynamic adversary ----------------------------------------------------------


def test_external_force_is_applied_reported_and_survives_reset():
    env = ExternalForceAdversary(gym.make("Hopper-v5"), ["foot"], max_force=3.0, axes="xz")
    foot = env.unwrapped.model.body("foot").id
    env.set_adversary_action([1.0, -0.5])
    _, info = env.reset(seed=0)
    # mj_resetData zeroed xfrc_applied; the wrapper wrote the held push again
    np.testing.assert_allclose(env.unwrapped.data.xfrc_applied[foot, :3], [3.0, 0.0, -1.5])
    np.testing.assert_allclose(info["forces"], [[3.0, 0.0, -1.5]])
    _, _, _, _, info = env.step(np.zeros(3))
    np.testing.assert_allclose(info["forces"], [[3.0, 0.0, -1.5]])
    # and it changes the motion relative to no push
    bare = gym.make("Hopper-v5")
    bare.reset(seed=0)
    env.reset(seed=0)
    for _ in range(5):
        pushed, *_ = env.step(np.zeros(3))
        free, *_ = bare.step(np.zeros(3))
    assert not np.allclose(pushed, free)


def test_dynamic_adversary_maps_actions_onto_the_box_each_step_and_resets_to_nominal():
    bounds = {"torso_mass": (1.0, 5.0), "friction": (0.5, 2.5)}
    env = DynamicParameterAdversary(
        gym.make("Hopper-v5"), bounds, adversary=lambda obs: np.array([-1.0, 0.5])
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(3))
    assert info["params"] == {"torso_mass": 1.0, "friction": 2.0}
    assert info["adversarial_reward"] == -reward
    assert env.get_params()["torso_mass"] == 1.0
    env.set_adversary(None)
    _, info = env.reset()
    assert env.get_params() == env.nominal_params()
    # via set_attr-style assignment, as vector envs do
    env.adversary = "random"
    env.reset(seed=2)
    seen = [env.step(np.zeros(3))[-1]["params"]["torso_mass"] for _ in range(5)]
    assert len(set(seen)) == 5 and all(1.0 <= m <= 5.0 for m in seen)


# -- make_env and the shipped configs ----------------------------------------------------------


def test_every_shipped_perturbation_config_builds():
    import yaml

    files = sorted(CONF.glob("*.yaml"))
    assert {"none.yaml", "hopper-2d.yaml", "hopper-2d-random.yaml", "hopper-2d-dynamic.yaml"} <= {
        f.name for f in files
    }
    for path in files:
        cfg = yaml.safe_load(path.read_text())
        suite = cfg.get("suite")
        env_id = (
            get_suite(suite).env_id if suite else ("Hopper-v5" if cfg["kind"] == "force" else "Pendulum-v1")
        )
        env = make_env(env_id, cfg)
        env.reset(seed=0)
        env.step(env.action_space.sample())
    assert type(make_env("Hopper-v5", None)) is type(gym.make("Hopper-v5"))
    assert type(make_env("Hopper-v5", {"kind": "none"})) is type(gym.make("Hopper-v5"))


def test_make_env_accepts_hydra_configs_and_uniform_sampler_bounds():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"kind": "random", "bounds": {"masspole": [0.2, 0.3]}})
    env = make_env("CartPole-v1", cfg, max_episode_steps=10)
    _, info = env.reset(seed=0)
    assert 0.2 <= info["params"]["masspole"] <= 0.3
    assert env.spec.max_episode_steps == 10
    assert UniformSampler({"a": [0, 1]}).bounds == {"a": (0.0, 1.0)}
