"""Observation, reward and drift disruptions: env checkers, zero = undisturbed bit for bit,
seeded repeats, the gradient attack beats noise of the same size, drift hits its bounds on time,
bad input refused, and every disruption suite evaluates through rlrobust.evaluate."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlrobust
from rlrobust.core.errors import ConfigError, PerturbationError
from rlrobust.envs import (
    ObservationAttack,
    ObservationNoise,
    ParameterDrift,
    ParameterPerturbation,
    RewardDisruption,
    describe_suites,
    get_suite,
    list_suites,
    make_env,
)
from rlrobust.envs.drift import schedule_fraction

CARTPOLE_GAINS = np.array([0.0, 0.0, 1.0, 0.5])  # push towards the side the pole falls to


def cartpole_controller() -> torch.nn.Linear:
    """A linear CartPole controller as a torch policy: scores ``[-w·s, w·s]`` (500 when undisturbed)."""
    net = torch.nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(np.stack([-CARTPOLE_GAINS, CARTPOLE_GAINS]), dtype=torch.float32))
    return net


def controller_action(obs):
    return int(CARTPOLE_GAINS @ np.asarray(obs, dtype=np.float64) > 0)


def rollout(env: gym.Env, seed: int, steps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Observations and rewards of seeded random actions (episodes restarted)."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        seen.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.array(seen), np.array(rewards)


SPECS = {
    "observation_noise": {"kind": "observation_noise", "scale": 0.1},
    "observation_noise_uniform_relative": {
        "kind": "observation_noise",
        "scale": 0.2,
        "distribution": "uniform",
        "relative_to": [1.0, 2.0, 0.1, 2.0],
    },
    "observation_attack_pgd": {"kind": "observation_attack", "eps": 0.05},
    "observation_attack_random": {"kind": "observation_attack", "eps": 0.05, "method": "random"},
    "reward": {"kind": "reward", "scale": 0.5, "noise": 0.3, "flip_rate": 0.2},
    "drift": {"kind": "drift", "bounds": {"masspole": (0.1, 1.0)}, "schedule": "sinusoid", "rate": 0.05},
}


def make(spec: dict) -> gym.Env:
    env = make_env("CartPole-v1", spec)
    if isinstance(env, ObservationAttack):
        env.set_policy(cartpole_controller() if env.method != "random" else controller_action)
    return env


@pytest.mark.parametrize("name", sorted(SPECS))
def test_gymnasium_and_sb3_env_checkers_pass(name):
    env = make(SPECS[name])
    assert env.observation_space == env.unwrapped.observation_space
    assert env.action_space == env.unwrapped.action_space
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*different from the unwrapped.*")
        warnings.filterwarnings("ignore", message=".*Box observation space m.*infinity.*")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_drift_on_mujoco_passes_the_checkers_and_composes_with_noise():
    env = make_env(
        "InvertedPendulum-v5",
        [
            {"kind": "drift", "bounds": {"pole_mass": (5.0, 20.0)}, "rate": 0.1},
            {"kind": "observation_noise", "scale": 0.01},
        ],
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*different from the unwrapped.*")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


ZERO = {
    "observation_noise": {"kind": "observation_noise", "scale": 0.0},
    "observation_attack": {"kind": "observation_attack", "eps": 0.0},
    "reward": {"kind": "reward"},
    "drift_at_nominal": {"kind": "drift", "bounds": {"masspole": (0.1, 1.0)}, "rate": 0.0},
    "stacked": [
        {"kind": "drift", "bounds": {"length": (0.5, 0.9)}, "rate": 0.0},
        {"kind": "observation_noise", "scale": 0.0},
        {"kind": "reward", "noise": 0.0},
    ],
}


@pytest.mark.parametrize("name", sorted(ZERO))
def test_zero_disruption_is_the_undisturbed_env_bit_for_bit(name):
    bare = rollout(gym.make("CartPole-v1"), seed=4)
    env = make(ZERO[name]) if isinstance(ZERO[name], dict) else make_env("CartPole-v1", ZERO[name])
    got = rollout(env, seed=4)
    assert got[0].dtype == bare[0].dtype
    assert np.array_equal(got[0], bare[0]) and np.array_equal(got[1], bare[1])


@pytest.mark.parametrize("name", ["observation_noise", "observation_attack_random", "reward"])
def test_seeded_disruption_repeats_and_seeds_differ(name):
    env = make(SPECS[name])
    first, again, other = rollout(env, seed=1), rollout(env, seed=1), rollout(env, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    bare = rollout(gym.make("CartPole-v1"), seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, bare))  # it does disturb
    # Another seed: another stream (and another start).
    assert not np.array_equal(first[0], other[0])


def test_noise_is_clipped_into_the_observation_space():
    env = ObservationNoise(gym.make("CartPole-v1"), scale=100.0)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        assert env.observation_space.contains(obs)
        obs, *_ = env.step(0)


def test_gradient_attack_lowers_a_linear_policy_more_than_noise_of_the_same_eps():
    eps, seeds = 0.1, [0, 1, 2]
    undisturbed, _ = rlrobust.core.episodes.run_episodes(gym.make("CartPole-v1"), controller_action, seeds)
    noisy_env = ObservationNoise(gym.make("CartPole-v1"), scale=eps, distribution="uniform")
    noisy, _ = rlrobust.core.episodes.run_episodes(noisy_env, controller_action, seeds)
    returns = {}
    for method in ("fgsm", "pgd"):
        attacked_env = ObservationAttack(
            gym.make("CartPole-v1"), eps=eps, policy=cartpole_controller(), method=method
        )
        returns[method], _ = rlrobust.core.episodes.run_episodes(attacked_env, controller_action, seeds)
    assert np.mean(undisturbed) == 500.0
    assert np.mean(returns["pgd"]) < np.mean(noisy) and np.mean(returns["fgsm"]) < np.mean(noisy)
    assert np.mean(returns["pgd"]) < 0.5 * np.mean(noisy), (returns, noisy)


def test_attack_stays_in_the_ball():
    env = ObservationAttack(
        gym.make("CartPole-v1"), eps=[0.01, 0.02, 0.03, 0.04], policy=cartpole_controller()
    )
    env.reset(seed=0)
    for _ in range(10):
        *_, info = env.step(1)
        assert np.all(np.abs(info["observation_attack"]) <= np.array([0.01, 0.02, 0.03, 0.04]) + 1e-6)


def test_gradient_attack_on_agents_and_sb3_models():
    from stable_baselines3 import DQN, PPO

    env = gym.make("CartPole-v1")
    agent = rlrobust.make_agent("iqn", env.observation_space, env.action_space, net_arch=[16], seed=0)
    for policy in (
        agent,
        DQN("MlpPolicy", env, policy_kwargs={"net_arch": [16]}, seed=0),
        PPO("MlpPolicy", env, policy_kwargs={"net_arch": [16]}, seed=0),
    ):
        attacked = ObservationAttack(gym.make("CartPole-v1"), eps=0.1, policy=policy, method="fgsm")
        assert attacked.active_method == "fgsm"
        attacked.reset(seed=0)
        *_, info = attacked.step(0)
        assert np.max(np.abs(info["observation_attack"])) > 0
    pendulum = gym.make("InvertedPendulum-v5")
    dsac = rlrobust.make_agent(
        "dsac", pendulum.observation_space, pendulum.action_space, net_arch=[16], seed=0
    )
    attacked = ObservationAttack(pendulum, eps=0.05, policy=dsac, steps=3)
    attacked.reset(seed=0)
    *_, info = attacked.step(np.zeros(1, np.float32))
    assert np.max(np.abs(info["observation_attack"])) <= 0.05 + 1e-6


def test_gradient_attack_on_a_black_box_is_refused_unless_fallback_is_asked():
    with pytest.raises(ConfigError, match="differentiable.*method='random' or fallback=True"):
        ObservationAttack(gym.make("CartPole-v1"), eps=0.05, policy=controller_action, method="pgd")
    env = ObservationAttack(
        gym.make("CartPole-v1"), eps=0.05, policy=controller_action, method="pgd", fallback=True
    )
    assert env.active_method == "random"
    env.reset(seed=0)
    env.step(0)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_scales_are_refused_naming_valid_values(bad):
    with pytest.raises(ConfigError, match="finite and >= 0"):
        ObservationNoise(gym.make("CartPole-v1"), scale=bad)
    with pytest.raises(ConfigError, match="finite and >= 0"):
        ObservationAttack(gym.make("CartPole-v1"), eps=bad)
    with pytest.raises(ConfigError, match="finite and >= 0"):
        RewardDisruption(gym.make("CartPole-v1"), noise=bad)
    with pytest.raises(ConfigError, match="finite and >= 0"):
        RewardDisruption(gym.make("CartPole-v1"), scale=bad)
    with pytest.raises(ConfigError, match="finite and >= 0"):
        ParameterDrift(gym.make("CartPole-v1"), {"masspole": (0.1, 1.0)}, rate=bad)


def test_other_bad_input():
    with pytest.raises(ConfigError, match="valid: 'gaussian', 'uniform'"):
        ObservationNoise(gym.make("CartPole-v1"), scale=0.1, distribution="laplace")
    with pytest.raises(ConfigError, match="one value per observation dimension"):
        ObservationNoise(gym.make("CartPole-v1"), scale=[0.1, 0.2])
    with pytest.raises(ConfigError, match="valid: 'fgsm', 'pgd', 'random'"):
        ObservationAttack(gym.make("CartPole-v1"), eps=0.1, method="cw")
    with pytest.raises(ConfigError, match=r"flip_rate must lie in \[0, 1\]"):
        RewardDisruption(gym.make("CartPole-v1"), flip_rate=1.5)
    with pytest.raises(ConfigError, match="valid: 'linear', 'sinusoid', 'step'"):
        ParameterDrift(gym.make("CartPole-v1"), {"masspole": (0.1, 1.0)}, schedule="cosine")
    with pytest.raises(ConfigError, match="valid:.*'scale'"):
        make_env("CartPole-v1", {"kind": "observation_noise", "sigma": 0.1})
    env = ObservationAttack(gym.make("CartPole-v1"), eps=0.1)
    with pytest.raises(ConfigError, match="no policy to attack"):
        env.reset(seed=0)


def test_drift_outside_the_valid_range_is_refused_naming_valid_values():
    with pytest.raises(PerturbationError, match=r"masspole=-0.5 .* must be finite and > 0 \(nominal 0.1"):
        ParameterDrift(gym.make("CartPole-v1"), {"masspole": (0.1, -0.5)})
    with pytest.raises(PerturbationError, match=r"max_torque=4.0 .* <= 2"):
        ParameterDrift(gym.make("Pendulum-v1"), {"max_torque": (2.0, 4.0)})
    with pytest.raises(PerturbationError, match="unknown parameter 'pole_mass'.*valid: 'force_mag'"):
        ParameterDrift(gym.make("CartPole-v1"), {"pole_mass": (0.1, 1.0)})
    with pytest.raises(PerturbationError, match="already has a parameter wrapper"):
        ParameterDrift(ParameterPerturbation(gym.make("CartPole-v1")), {"masspole": (0.1, 1.0)})


@pytest.mark.filterwarnings(
    "ignore:.*already returned terminated:UserWarning"
)  # the pole may fall: the drift goes on
@pytest.mark.parametrize(
    "schedule, bound_steps",
    [
        ("linear", {0: 0.1, 50: 1.0, 80: 1.0}),
        ("step", {0: 0.1, 49: 0.1, 50: 1.0, 70: 1.0}),
        ("sinusoid", {0: 0.1, 25: 1.0, 50: 0.1, 75: 1.0}),
    ],
)
def test_drift_reaches_its_bounds_at_the_scheduled_steps(schedule, bound_steps):
    env = ParameterDrift(
        gym.make("CartPole-v1", max_episode_steps=200), {"masspole": (0.1, 1.0)}, schedule=schedule, rate=0.02
    )
    _, info = env.reset(seed=0)
    seen = [info["params"]["masspole"]]
    base = env.unwrapped
    for _ in range(80):
        # Keep the pole up long enough: the drift is what is tested, not the controller.
        *_, info = env.step(controller_action(base.state))
        seen.append(info["params"]["masspole"])
    applied = [env.values_at(k)["masspole"] for k in range(81)]
    for k, value in bound_steps.items():
        assert applied[k] == value, (k, applied[k])
    assert seen[1] == applied[0] and seen[51] == applied[50]  # info reports what acted in the step
    assert min(applied) >= 0.1 and max(applied) <= 1.0
    assert base.masspole == applied[79] and base.polemass_length == applied[79] * base.length
    env.reset(seed=1)
    assert base.masspole == 0.1  # back at the start of the schedule
    assert schedule_fraction(schedule, 0.0, 1000) == 0.0


def test_reward_disruption_keeps_the_true_reward():
    env = RewardDisruption(gym.make("CartPole-v1"), scale=2.0, flip_rate=1.0)
    env.reset(seed=0)
    _, reward, *_, info = env.step(0)
    assert reward == -2.0 and info["true_reward"] == 1.0


def test_every_suite_is_described_on_one_line():
    lines = describe_suites().splitlines()
    assert len(lines) == len(list_suites())
    assert {
        "cartpole-obs-noise",
        "hopper-obs-noise",
        "cartpole-attack",
        "hopper-attack",
        "cartpole-drift",
        "hopper-drift",
    } <= set(list_suites())
    assert (
        "cartpole-2d: CartPole-v1, pole mass x pole half-length (nominal 0.1 x 0.5); masspole [0.05, 1] x length [0.25, 1.5]"
        in lines
    )
    assert any(
        line.startswith("hopper-2d: Hopper-v5, physical parameters friction [0.1, 3]") for line in lines
    )


@pytest.mark.parametrize("suite_id", ["cartpole-obs-noise", "cartpole-attack", "cartpole-drift"])
def test_disruption_suites_evaluate_and_write_reports(suite_id, tmp_path):
    env = gym.make("CartPole-v1")
    agent = rlrobust.make_agent("iqn", env.observation_space, env.action_space, net_arch=[16], seed=0)
    result = rlrobust.evaluate(
        agent, suite_id, episodes=1, points_per_dim=2, workers=1, env_kwargs={"max_episode_steps": 60}
    )
    suite = get_suite(suite_id)
    assert result.names == suite.names and len(result.points) == 2
    assert result.points[0][suite.names[0]] == 0.0  # the grid starts undisturbed
    paths = result.save(tmp_path, tensorboard=True)
    assert paths["plot"].name == "curve.png" and paths["plot"].stat().st_size > 0
    assert paths["csv"].read_text().startswith(suite.names[0])
    assert any((tmp_path / "tb").iterdir())


def test_attack_suite_evaluates_in_worker_processes():
    """The evaluated policy reaches the attack wrapper in each worker (by pickle)."""
    env = gym.make("CartPole-v1")
    agent = rlrobust.make_agent("iqn", env.observation_space, env.action_space, net_arch=[16], seed=0)
    serial = rlrobust.evaluate(
        agent,
        "cartpole-attack",
        episodes=1,
        points_per_dim=2,
        workers=1,
        env_kwargs={"max_episode_steps": 40},
    )
    parallel = rlrobust.evaluate(
        agent,
        "cartpole-attack",
        episodes=1,
        points_per_dim=2,
        workers=2,
        env_kwargs={"max_episode_steps": 40},
    )
    assert np.array_equal(serial.returns, parallel.returns)


def test_mujoco_disruption_suites_build():
    env = gym.make("Hopper-v5")
    agent = rlrobust.make_agent("dsac", env.observation_space, env.action_space, net_arch=[16], seed=0)
    for suite_id in ("hopper-obs-noise", "hopper-attack", "hopper-drift"):
        result = rlrobust.evaluate(
            agent, suite_id, episodes=1, points_per_dim=2, workers=1, env_kwargs={"max_episode_steps": 20}
        )
        assert result.returns.shape == (2, 1)
