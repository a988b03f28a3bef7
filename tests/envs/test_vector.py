"""Vector envs (G1-G3): Sync and Async agree, per-env parameter streams, autoreset restores nominal."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

from rlrobust.envs import make_env

DR = {"kind": "random", "suite": "hopper-2d"}


def _fns(n: int, perturbation, **kwargs):
    return [functools.partial(make_env, "Hopper-v5", perturbation, **kwargs) for _ in range(n)]


def _run(venv: gym.vector.VectorEnv, steps: int) -> list:
    out = []
    obs, info = venv.reset(seed=5)
    out.append((obs, info["params"]["torso_mass"]))
    venv.action_space.seed(0)
    for _ in range(steps):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
        out.append((obs, rew, term, trunc, info["params"]["torso_mass"], info["params"]["friction"]))
    return out


def test_sync_and_async_vector_envs_agree_step_by_step():
    """G1: 2 sub-envs, 50 steps with autoresets (max_episode_steps=15), domain randomization."""
    sync = gym.vector.SyncVectorEnv(_fns(2, DR, max_episode_steps=15))
    async_ = gym.vector.AsyncVectorEnv(_fns(2, DR, max_episode_steps=15))
    try:
        a, b = _run(sync, 50), _run(async_, 50)
        for x, y in zip(a, b):
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v)
        # parameters set from the parent reach the worker processes
        async_.call("set_params", torso_mass=2.5)
        assert [p["torso_mass"] for p in async_.call("get_params")] == [2.5, 2.5]
    finally:
        sync.close()
        async_.close()


def test_each_sub_env_has_its_own_reproducible_parameter_stream():
    """G2: sub-envs draw different parameters; the same seed gives the same streams."""
    venv = gym.vector.SyncVectorEnv(_fns(3, DR, max_episode_steps=5))
    first = _run(venv, 12)
    second = _run(venv, 12)
    masses = np.array([step[-2] for step in first[1:]])  # (12, 3)
    assert all(len(set(row)) == 3 for row in masses)  # sub-envs differ at every step
    assert len({m for m in masses[:, 0]}) == 3  # episodes 1-3 of sub-env 0: 3 draws
    for x, y in zip(first, second):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)


def test_autoreset_restores_the_nominal_model_before_the_next_episode():
    """G3: with NEXT_STEP autoreset, the reset step leaves a dynamic adversary's env nominal; a
    domain-randomized env reports its new draw at the reset step."""
    dyn = {"kind": "dynamic", "suite": "hopper-2d", "adversary": "random"}
    venv = gym.vector.SyncVectorEnv(_fns(2, dyn, max_episode_steps=4))
    nominal = venv.call("nominal_params")[0]
    venv.reset(seed=0)
    for _ in range(4):
        _, _, _, trunc, _ = venv.step(np.zeros((2, 3)))
        assert venv.call("get_params")[0] != nominal
    assert trunc.all()
    venv.step(np.zeros((2, 3)))  # the autoreset step
    assert venv.call("get_params") == (nominal, nominal)

    venv = gym.vector.SyncVectorEnv(_fns(2, DR, max_episode_steps=4))
    _, info = venv.reset(seed=0)
    before = venv.call("get_params")
    for _ in range(5):
        _, _, _, _, info = venv.step(np.zeros((2, 3)))
    after = venv.call("get_params")
    for i in range(2):
        assert after[i]["torso_mass"] == info["params"]["torso_mass"][i] != before[i]["torso_mass"]
        assert {k: v for k, v in after[i].items() if k not in DR_NAMES} == {
            k: v for k, v in nominal.items() if k not in DR_NAMES
        }


DR_NAMES = ("friction", "torso_mass")


@pytest.mark.parametrize("n_envs", [2])
def test_sb3_vecenv_adapter(n_envs):
    from gymnasium.vector import AutoresetMode

    from rlrobust.interop.vec_env import GymnasiumVecEnv

    venv = gym.vector.SyncVectorEnv(
        _fns(n_envs, DR, max_episode_steps=3), autoreset_mode=AutoresetMode.SAME_STEP
    )
    env = GymnasiumVecEnv(venv)
    env.seed(1)
    obs = env.reset()
    assert obs.shape == (n_envs, 11)
    for _ in range(3):
        obs, rewards, dones, infos = env.step(np.zeros((n_envs, 3)))
    assert dones.all() and all("terminal_observation" in i for i in infos)
    assert env.env_method("get_params")[0].keys() == venv.call("nominal_params")[0].keys()
    env.close()


def test_run_episodes_returns_one_seeded_episode_per_seed():
    from rlrobust.core.episodes import run_episodes

    env = gym.make("CartPole-v1")
    policy = lambda obs: int(obs[2] > 0)  # noqa: E731  (push toward the pole's lean: long episodes)
    returns, lengths = run_episodes(env, policy, [3, 4, 3])
    assert returns == [float(n) for n in lengths]  # CartPole pays 1 per step
    assert lengths[0] == lengths[2] and len(lengths) == 3  # the same reset seed, the same episode
    assert all(n > 20 for n in lengths)
