"""Replay buffer, n-step accumulator and collector (FIFO order, seeded sampling, step accounting, time-limit handling)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobust.core.collector import Collector, make_vector_env
from rlrobust.core.errors import ConfigError, NonFiniteError
from rlrobust.core.replay import NStepAccumulator, ReplayBuffer


def rows(n, start=0, obs_dim=2):
    i = np.arange(start, start + n, dtype=np.float32)
    return dict(
        observations=np.repeat(i[:, None], obs_dim, 1),
        actions=i.astype(np.int64),
        rewards=i,
        next_observations=np.repeat(i[:, None] + 1, obs_dim, 1),
        dones=np.zeros(n, np.float32),
        discounts=np.full(n, 0.9, np.float32),
    )


def test_fifo_overwrite_order_and_size():
    buf = ReplayBuffer(5)
    buf.add(**rows(3))
    buf.add(**rows(4, start=3))  # 7 rows into capacity 5: rows 0 and 1 are overwritten
    assert len(buf) == 5
    assert sorted(buf.storage["rewards"].tolist()) == [2, 3, 4, 5, 6]
    assert buf.storage["rewards"][0].item() == 5 and buf.storage["rewards"][1].item() == 6


def test_seeded_sampler_is_reproducible_and_state_restores():
    a, b = ReplayBuffer(100, seed=3), ReplayBuffer(100, seed=3)
    for buf in (a, b):
        buf.add(**rows(50))
    assert torch.equal(a.sample(32).rewards, b.sample(32).rewards)
    state = a.state_dict()
    first = a.sample(16).rewards
    c = ReplayBuffer(100, seed=999)
    c.load_state_dict(state)
    assert torch.equal(c.sample(16).rewards, first)
    assert len(c) == 50


def test_cpu_gather_takes_the_rows_index_select_takes():
    buf = ReplayBuffer(10)
    buf.add(**rows(7), step=np.arange(7))
    idx = torch.tensor([6, 0, 3, 3, 1])
    batch = buf.gather(idx)
    for key in ("observations", "actions", "rewards", "next_observations", "dones", "discounts"):
        want = buf.storage[key].index_select(0, idx)
        got = getattr(batch, key)
        assert torch.equal(got, want) and got.dtype == want.dtype, key
    assert torch.equal(batch.extras["step"], buf.storage["step"].index_select(0, idx))


def test_extras_travel_with_the_batch():
    buf = ReplayBuffer(10)
    buf.add(**rows(4), step=np.arange(4))
    batch = buf.sample(8)
    assert torch.equal(batch.extras["step"].float(), batch.rewards)


def test_nstep_hand_computation_and_truncation_bootstrap():
    gamma = 0.5
    acc = NStepAccumulator(num_envs=1, n_step=3, gamma=gamma)
    out = []
    rewards = [1.0, 2.0, 3.0, 4.0]
    for t, r in enumerate(rewards):
        last = t == len(rewards) - 1
        res = acc.push(
            np.array([[t]]),
            np.array([0]),
            np.array([r]),
            np.array([[t + 1]]),
            terminated=np.array([False]),
            episode_end=np.array([last]),
        )
        if res is not None:
            out += [dict(zip(res, vals)) for vals in zip(*res.values())]
    # windows starting at t = 0, 1 are full (3 rewards); t = 2, 3 are flushed at the truncation
    assert [float(o["observations"][0]) for o in out] == [0, 1, 2, 3]
    np.testing.assert_allclose(
        [o["rewards"] for o in out], [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3 + 0.25 * 4, 3 + 0.5 * 4, 4]
    )
    np.testing.assert_allclose([o["discounts"] for o in out], [0.125, 0.125, 0.25, 0.5])
    assert [float(o["next_observations"][0]) for o in out] == [3, 4, 4, 4]
    assert all(o["dones"] == 0 for o in out)  # truncation is not termination


def test_nstep_termination_sets_done_for_every_pending_window():
    acc = NStepAccumulator(num_envs=1, n_step=5, gamma=0.9)
    acc.push(
        np.array([[0]]), np.array([0]), np.array([1.0]), np.array([[1]]), np.array([False]), np.array([False])
    )
    res = acc.push(
        np.array([[1]]), np.array([0]), np.array([1.0]), np.array([[2]]), np.array([True]), np.array([True])
    )
    assert res["dones"].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(res["rewards"], [1.9, 1.0])


class CountingEnv(gym.Env):
    """obs = step index; reward 1; truncates after `limit` steps (never terminates)."""

    observation_space = gym.spaces.Box(0, 1000, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, limit=5, nan_at=None):
        self.limit, self.nan_at, self.t = limit, nan_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float("nan") if self.nan_at == self.t else 1.0
        return np.array([self.t], np.float32), reward, False, self.t >= self.limit, {}


def test_collector_stores_final_obs_on_truncation_and_counts_every_env_step():
    envs = make_vector_env(lambda: CountingEnv(limit=5), num_envs=3)
    collector = Collector(envs, seed=0)
    buf = ReplayBuffer(100)
    finished = []
    for _ in range(7):
        finished += collector.step(lambda obs: np.zeros(len(obs), np.int64), buf)
    assert collector.total_steps == 21 and len(buf) == 21
    obs = buf.storage["observations"][:21, 0]
    nxt = buf.storage["next_observations"][:21, 0]
    assert torch.equal(nxt, obs + 1)  # never the reset observation (0) after the last step
    assert buf.storage["dones"].sum() == 0
    assert [ep["length"] for ep in finished] == [5, 5, 5]
    assert collector.episodes == 3
    assert buf.storage["step"].max() == 4
    collector.close()


def test_collector_raises_on_non_finite_env_output_naming_the_env():
    envs = make_vector_env(lambda: CountingEnv(nan_at=2), num_envs=2)
    collector = Collector(envs)
    collector.step(None, None)
    with pytest.raises(NonFiniteError, match="env 0 returned a non-finite reward"):
        collector.step(None, None)
    collector.close()


def test_async_and_sync_collectors_agree():
    def run(vectorization):
        collector = Collector(make_vector_env(lambda: gym.make("CartPole-v1"), 2, vectorization), seed=5)
        buf = ReplayBuffer(1000)
        for _ in range(60):
            collector.step(None, buf)
        collector.close()
        return buf.storage

    sync, asyn = run("sync"), run("async")
    for key in sync:
        assert torch.equal(sync[key], asyn[key]), key


def test_bad_settings_name_the_valid_choices():
    with pytest.raises(ConfigError, match="sync"):
        make_vector_env(lambda: CountingEnv(), 1, "threads")
    with pytest.raises(ConfigError, match="n_step"):
        NStepAccumulator(1, 0, 0.9)
    with pytest.raises(ConfigError, match="positive"):
        ReplayBuffer(0)


def _assert_same(a, b, where="") -> None:
    """Equal step results: arrays (object arrays element by element), dicts key by key."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object and a.shape == b.shape, where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{where}[{i}]")
    else:
        assert type(a) is type(b), where
        np.testing.assert_array_equal(a, b, err_msg=where)
        assert np.asarray(a).dtype == np.asarray(b).dtype, where


@pytest.mark.parametrize("task", ["cartpole", "hopper-dr", "garnet", "counting"])
def test_lean_sync_vector_env_steps_like_gymnasiums(task):
    """LeanSyncVectorEnv returns what SyncVectorEnv (same-step autoreset) returns, step by step,
    across autoresets: observations, rewards, flags and infos (final_obs, final_info, params)."""
    from rlrobust.core.collector import LeanSyncVectorEnv
    from rlrobust.envs import make_env
    from rlrobust.envs.tabular import garnet

    make = {
        "cartpole": lambda: gym.make("CartPole-v1"),
        "hopper-dr": lambda: make_env(
            "Hopper-v5", {"kind": "random", "suite": "hopper-2d"}, max_episode_steps=15
        ),
        "garnet": lambda: gym.wrappers.TimeLimit(garnet(6, 3, 3, seed=0), max_episode_steps=7),
        "counting": lambda: CountingEnv(limit=4),
    }[task]
    fns = [make] * 3
    lean = LeanSyncVectorEnv(fns)
    reference = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        _assert_same(lean.reset(seed=[3, 4, 5]), reference.reset(seed=[3, 4, 5]), "reset")
        lean.action_space.seed(0)
        for t in range(60):
            actions = lean.action_space.sample()
            _assert_same(lean.step(actions), reference.step(actions), f"step {t}")
    finally:
        lean.close()
        reference.close()


def test_env_rewards_and_terminations_are_stored_as_float32():
    """The n = 1 pass-through hands on the env's float64 rewards and boolean terminations; the
    buffer stores them as float32, the dtype every agent reads."""
    buf = ReplayBuffer(4)
    batch = rows(2)
    batch.update(rewards=np.array([0.1, 2.0]), dones=np.array([True, False]))
    buf.add(**batch)
    sample = buf.sample(8)
    assert sample.rewards.dtype == sample.dones.dtype == torch.float32
    assert set(sample.dones.tolist()) <= {0.0, 1.0}
    assert buf.storage["rewards"][:2].tolist() == [np.float32(0.1), 2.0]
    assert buf.storage["dones"][:2].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("change", ["renamed", "missing", "extra"])
def test_add_with_other_fields_is_refused_naming_them(change):
    buf = ReplayBuffer(10)
    buf.add(**rows(2), step=np.arange(2))
    batch = {**rows(2), "step": np.arange(2)}
    if change == "renamed":  # as many fields as the storage, one unknown
        batch["episode_step"] = batch.pop("step")
    elif change == "missing":
        del batch["step"]
    else:
        batch["extra"] = np.arange(2)
    with pytest.raises(ValueError, match="fields"):
        buf.add(**batch)
    assert len(buf) == 2  # nothing was added
