"""RIQL (Yang et al., ICLR 2024): ensemble quantile, Huber δ = 1/σ², clipping, normalizer, one-step task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlrobust
from rlrobust.agents.riql import (
    IQL_BASELINE,
    advantage_weights,
    ensemble_estimate,
    huber_critic_loss,
    huber_delta,
)
from rlrobust.core.errors import ConfigError
from rlrobust.core.types import TransitionBatch
from rlrobust.data import Dataset, corrupt

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
A_STAR = 0.4


def test_quantile_over_ensemble_by_hand():
    q = torch.tensor([[3.0, 10.0], [1.0, 40.0], [5.0, 20.0], [2.0, 30.0], [4.0, 0.0]])  # (K=5, B=2)
    np.testing.assert_allclose(ensemble_estimate(q, 0.5), [3.0, 20.0])  # K odd: the median
    # α = 0.3: position α(K − 1) = 1.2 between the 2nd and 3rd smallest: v1 + 0.2·(v2 − v1).
    np.testing.assert_allclose(ensemble_estimate(q, 0.3), [2.0 + 0.2 * 1.0, 10.0 + 0.2 * 10.0], rtol=1e-6)
    np.testing.assert_allclose(ensemble_estimate(q, 0.25), [2.0, 10.0])
    np.testing.assert_allclose(ensemble_estimate(q, None, "min"), [1.0, 0.0])
    np.testing.assert_allclose(ensemble_estimate(q, None, "mean"), [3.0, 20.0])


def test_sigma_to_delta_huber():
    assert huber_delta(0.1) == pytest.approx(100.0) and huber_delta(3.0) == pytest.approx(1 / 9)
    q = torch.zeros(1, 3)
    y = torch.tensor([5.0, -50.0, 150.0])
    # σ = 0.1: x²/200 for |x| < 100, |x| − 50 beyond.
    np.testing.assert_allclose(huber_critic_loss(q, y, 0.1)[0], [25 / 200, 2500 / 200, 150 - 50], rtol=1e-6)
    # σ = 3: nearly L1, |x| − 1/18.
    np.testing.assert_allclose(
        huber_critic_loss(q, torch.tensor([2.0, -3.0, 0.05]), 3.0)[0],
        [2 - 1 / 18, 3 - 1 / 18, 0.05**2 * 9 / 2],
        rtol=1e-5,
    )
    np.testing.assert_allclose(huber_critic_loss(q, y, None)[0], y.numpy() ** 2)
    with pytest.raises(ValueError, match="q \\(K, B\\) and target \\(B,\\)"):
        huber_critic_loss(q, torch.zeros(2), 1.0)


def test_weights_capped_and_target_clipped():
    assert advantage_weights(torch.tensor([10.0, 0.0, -1.0]), beta=3.0).tolist() == pytest.approx(
        [100.0, 1.0, float(np.exp(-3.0))]
    )
    agent = rlrobust.make_agent("riql", OBS, ACT, net_arch=[16], huber_sigma=None, normalize_obs=False)
    b = 8
    obs, act = torch.randn(b, 3), torch.rand(b, 1) * 2 - 1
    q = agent.critic(torch.cat([obs, act], -1)).squeeze(-1).detach()  # (K, B) before the update
    batch = TransitionBatch(obs, act, torch.full((b,), 1e6), obs, torch.ones(b), torch.full((b,), 0.99))
    metrics = agent.update(batch)
    # y = clip(1e6, −100, 1000) = 1000, so the squared loss is mean (Q_k − 1000)².
    assert metrics["loss/critic"] == pytest.approx(((q - 1000.0) ** 2).mean().item(), rel=1e-5)


def test_bad_config_is_refused_naming_every_problem():
    with pytest.raises(ConfigError, match="ensemble_reduction must be 'min' or 'mean'; target_clip must be"):
        rlrobust.make_agent("riql", OBS, ACT, ensemble_reduction="max", target_clip=[0.0])


def test_normalizer_uses_obs_and_next_obs_and_acts_with_it():
    rng = np.random.default_rng(0)
    obs = rng.normal(2.0, 3.0, size=(50, 3)).astype(np.float32)
    nxt = rng.normal(-1.0, 1.0, size=(50, 3)).astype(np.float32)
    rew = np.arange(50, dtype=np.float32)
    ds = Dataset(obs, np.zeros((50, 1), np.float32), rew, nxt, np.zeros(50, bool), np.zeros(50, bool))
    ds.timeouts[[9, 49]] = True  # two episodes: returns 45 and 1180
    agent = rlrobust.make_agent("riql", OBS, ACT, net_arch=[16])
    agent.prepare(ds)
    both = np.concatenate([obs, nxt]).astype(np.float64)
    np.testing.assert_allclose(agent.obs_mean.numpy(), both.mean(0), rtol=1e-5)
    np.testing.assert_allclose(agent.obs_std.numpy(), both.std(0) + 1e-3, rtol=1e-5)
    assert agent.reward_scale == pytest.approx(1000.0 / (1180.0 - 45.0))
    x = rng.normal(size=(4, 3)).astype(np.float32)
    with torch.no_grad():
        manual = torch.tanh(agent.actor((torch.as_tensor(x) - agent.obs_mean) / agent.obs_std)).numpy()
    np.testing.assert_allclose(agent.act(x), manual, rtol=1e-6)
    assert agent.extra_state()["obs_std"].tolist() == agent.obs_std.tolist()


def one_step_dataset(seed: int = 0, n: int = 2000) -> Dataset:
    """One-step episodes, half the actions near a* = 0.4, half poor (in [−1, −0.5]);
    reward −(a − a*)²; the observation is irrelevant noise."""
    rng = np.random.default_rng(seed)
    good = np.clip(A_STAR + 0.05 * rng.normal(size=n // 2), -1, 1)
    poor = rng.uniform(-1.0, -0.5, size=n - n // 2)
    acts = np.concatenate([good, poor]).astype(np.float32)[:, None]
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    return Dataset(
        obs,
        acts,
        (-((acts[:, 0] - A_STAR) ** 2)).astype(np.float32),
        obs.copy(),
        np.ones(n, bool),
        np.zeros(n, bool),
        metadata={"action_space": ACT, "corruption": []},
    )


def train_offline(agent, ds: Dataset, updates: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    for _ in range(updates):
        i = rng.integers(0, len(ds), 256)
        agent.update(
            TransitionBatch(
                torch.as_tensor(ds.observations[i]),
                torch.as_tensor(ds.actions[i]),
                torch.as_tensor(ds.rewards[i]),
                torch.as_tensor(ds.next_observations[i]),
                torch.as_tensor(ds.terminals[i], dtype=torch.float32),
                torch.full((256,), 0.99),
            )
        )
    test_obs = np.random.default_rng(99).normal(size=(200, 3)).astype(np.float32)
    return float(agent.act(test_obs, deterministic=True).mean())


def test_c3_one_step_offline_problem():
    agent = rlrobust.make_agent(
        "riql", OBS, ACT, seed=0, net_arch=[64, 64], learning_rate=1e-3, normalize_reward=False
    )
    agent.prepare(one_step_dataset())
    assert abs(train_offline(agent, one_step_dataset(), 500) - A_STAR) < 0.15


def test_c3_with_20_percent_corrupted_rewards():
    ds = corrupt(one_step_dataset(), kind="rewards", mode="random", rate=0.2, scale=1.0, seed=0)
    assert ds.extras["corrupted"].sum() == 400
    agent = rlrobust.make_agent(
        "riql", OBS, ACT, seed=0, net_arch=[64, 64], learning_rate=1e-3, normalize_reward=False
    )
    agent.prepare(ds)
    assert abs(train_offline(agent, ds, 500) - A_STAR) < 0.2


def test_iql_baseline_switches():
    agent = rlrobust.make_agent("riql", OBS, ACT, net_arch=[16], **IQL_BASELINE)
    assert agent.critic.ensemble_size == 2
    x = torch.randn(5, 3)
    np.testing.assert_array_equal(agent.normalize(x), x)  # normalize_obs=False: identity
    batch = TransitionBatch(x, torch.zeros(5, 1), torch.ones(5), x, torch.zeros(5), torch.full((5,), 0.99))
    assert all(np.isfinite(v) for v in agent.update(batch).values())


# ----------------------------------------------------------------------------- fast path, BC, diagnostics
def _bench_offline():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_offline

    return bench_offline


def test_iql_switches_equal_the_plain_corl_style_loop():
    """The fast update (ensemble critic, one backward, one fused Adam) makes the same updates as
    the benchmark's plain reference loop (two Q nets, three Adams, three backwards)."""
    bench = _bench_offline()
    obs_space = gym.spaces.Box(-np.inf, np.inf, (11,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    torch.manual_seed(0)
    agent = rlrobust.make_agent("riql", obs_space, act_space, seed=0, **IQL_BASELINE)
    ref = bench.CorlIQL(11, 3, decay_steps=agent.config.actor_lr_decay_steps)
    ref.load_from(agent)
    for batch in bench.synthetic_batches(3, 64):
        ours, theirs = agent.update(batch), ref.update(batch)
        np.testing.assert_allclose(
            [ours["loss/value"], ours["loss/critic"], ours["loss/actor"]],
            [theirs["value_loss"], theirs["q_loss"], theirs["actor_loss"]],
            rtol=1e-5,
        )
    ref_twin = bench.CorlIQL(11, 3)
    ref_twin.load_from(agent)  # agent's weights after 3 updates, mapped back onto the plain nets
    for ours, theirs in (
        (ref_twin.q1, ref.q1),
        (ref_twin.q2, ref.q2),
        (ref_twin.vf, ref.vf),
        (ref_twin.actor, ref.actor),
        (ref_twin.q1_target, ref.q1_target),
    ):
        for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_iql_with_beta_zero_is_behaviour_cloning_on_a_pd_dataset():
    """Two updates of IQL with β = 0 move the actor exactly as plain behaviour cloning (Adam on
    ``‖tanh(π(s)) − a‖²`` in the [−1, 1] box) on a recorded PD-controller dataset."""
    import copy

    from fakes import record_pd_dataset

    from rlrobust.core.replay import ReplayBuffer

    data = record_pd_dataset()
    agent = rlrobust.make_agent(
        "riql",
        data.metadata["observation_space"],
        data.metadata["action_space"],
        seed=0,
        **{**IQL_BASELINE, "beta": 0.0},
    )
    agent.prepare(data)
    actor = copy.deepcopy(agent.actor)
    opt = torch.optim.Adam(actor.parameters(), lr=agent.config.learning_rate)
    buffer = ReplayBuffer.from_dataset(data, gamma=0.99, seed=0)
    for _ in range(2):
        batch = buffer.sample(32)
        agent.update(batch)
        target = (batch.actions / 2.0).clamp(-1.0, 1.0)  # Pendulum's box is [−2, 2]
        loss = (torch.tanh(actor(batch.observations)) - target).square().sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for a, b in zip(agent.actor.parameters(), actor.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def _tensorboard_tags(run_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_diagnostics_reach_tensorboard(tmp_path):
    """AWR weights' ESS and clip fraction, mean Q and V are logged at log steps (TensorBoard and metrics.jsonl)."""
    from fakes import record_pd_dataset

    from rlrobust.core.logging import read_metrics

    data = record_pd_dataset()
    run = tmp_path / "riql"
    rlrobust.train(
        "riql",
        "Pendulum-v1",
        total_steps=4,
        dataset=data,
        run_dir=run,
        log_interval=2,
        final_eval_episodes=0,
        progress=False,
        agent_kwargs={"net_arch": [16, 16]},
    )
    names = {
        "train/actor/weight_ess",
        "train/actor/weight_clip_frac",
        "train/q/mean",
        "train/v/mean",
        "train/adv/mean",
        "train/actor/weight_mean",
    }
    assert names <= _tensorboard_tags(run)
    rows = [r for r in read_metrics(run) if "train/actor/weight_ess" in r]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(
        0.0 < r["train/actor/weight_ess"] <= 1.0 and 0.0 <= r["train/actor/weight_clip_frac"] <= 1.0
        for r in rows
    )


def test_awr_diagnostics_by_hand():
    from rlrobust.agents.riql import awr_diagnostics

    adv = torch.tensor([0.0, 0.0, 10.0, 10.0])  # β = 1, cap e²: two weights 1, two at the clip
    w = advantage_weights(adv, 1.0, max_weight=float(np.exp(2.0)))
    d = awr_diagnostics(w, adv, 1.0, float(np.exp(2.0)))
    e2 = float(np.exp(2.0))
    assert d["actor/weight_clip_frac"] == 0.5
    np.testing.assert_allclose(d["actor/weight_ess"], (2 + 2 * e2) ** 2 / (4 * (2 + 2 * e2**2)), rtol=1e-6)
