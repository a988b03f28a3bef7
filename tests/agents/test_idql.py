"""IDQL (Hansen-Estruch et al., 2023): VP schedule, DDPM step, expectile, critic selection, one-step task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import rlrobust
from rlrobust.agents.idql_diffusion import ddpm_step, vp_beta_schedule
from rlrobust.core.losses import expectile_loss
from rlrobust.core.types import TransitionBatch
from rlrobust.data import Dataset

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
A_STAR = 0.4
SMALL = dict(
    net_arch=[64, 64], score_width=64, score_blocks=2, cond_arch=[64, 64], time_dim=32, num_samples=32
)


def test_vp_schedule_t5_matches_card():
    betas = vp_beta_schedule(5)
    np.testing.assert_allclose(betas, [0.19587, 0.45882, 0.63578, 0.75488, 0.83503], atol=1e-5)
    np.testing.assert_allclose(
        torch.cumprod(1 - betas, 0), [0.80413, 0.43518, 0.15850, 0.03885, 0.00641], atol=1e-5
    )


@pytest.mark.parametrize("temperature", [0.0, 1.0, 3.0])
def test_final_ddpm_step_maps_any_x_to_point_mass(temperature):
    """A perfect ε-predictor for a point mass at a0: ε̂ = (x − √ᾱ_t a0)/√(1 − ᾱ_t)."""
    betas = vp_beta_schedule(5)
    alpha_bars = torch.cumprod(1 - betas, 0)
    a0 = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=gen, dtype=torch.float64) * 5
    eps = (x - alpha_bars[0].sqrt() * a0) / (1 - alpha_bars[0]).sqrt()
    np.testing.assert_allclose(
        ddpm_step(x, eps, 0, betas, alpha_bars, None, temperature), a0.expand(64, 2), atol=1e-12
    )
    # Whole chain from pure noise, noise injected at t > 0: still exactly a0 at the end.
    for t in reversed(range(5)):
        eps = (x - alpha_bars[t].sqrt() * a0) / (1 - alpha_bars[t]).sqrt()
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64) if t else None
        x = ddpm_step(x, eps, t, betas, alpha_bars, noise, temperature)
    np.testing.assert_allclose(x, a0.expand(64, 2), atol=1e-12)


def test_expectile_known_answers():
    diff = torch.tensor([1.0, -2.0])
    assert expectile_loss(diff, 0.7).item() == pytest.approx((0.7 * 1 + 0.3 * 4) / 2)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4) / 2)  # ½·MSE
    # The minimiser v of E[expectile(x − v)] solves Σ w_i (x_i − v) = 0 (w = τ above v, 1 − τ below).
    x = torch.tensor([0.0, 1.0, 2.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([v], lr=0.05)
    for _ in range(3000):
        opt.zero_grad()
        expectile_loss(x - v, 0.9).backward()
        opt.step()
    lo, hi = 0.0, 10.0  # bisection on the first-order condition, in numpy
    for _ in range(60):
        mid = (lo + hi) / 2
        w = np.where(x.numpy() > mid, 0.9, 0.1)
        lo, hi = (mid, hi) if (w * (x.numpy() - mid)).sum() > 0 else (lo, mid)
    assert v.item() == pytest.approx(lo, abs=1e-3)


class TwoCritics(nn.Module):
    """Q_1 = −(a − 0.3)², Q_2 = −(a − 0.5)² − 0.01: min-Q peaks between them."""

    def forward(self, sa):
        a = sa[:, -1]
        return torch.stack([-((a - 0.3) ** 2), -((a - 0.5) ** 2) - 0.01]).unsqueeze(-1)  # (K, B, 1)


def test_selection_takes_largest_min_q(monkeypatch):
    agent = rlrobust.make_agent("idql", OBS, ACT, **SMALL)
    cands = torch.linspace(-1, 1, 32).unsqueeze(1)  # (N, 1), the same for each state
    monkeypatch.setattr(agent, "sample_actions", lambda obs, noise: cands.repeat(obs.shape[0] // 32, 1))
    agent.critic_target = TwoCritics()
    c = cands[:, 0].numpy()
    expected = c[np.argmax(np.minimum(-((c - 0.3) ** 2), -((c - 0.5) ** 2) - 0.01))]
    out = agent.act(np.zeros((4, 3), np.float32))
    np.testing.assert_allclose(out, np.full((4, 1), expected), rtol=1e-6)


def test_seeded_sampling_reproducible():
    a = rlrobust.make_agent("idql", OBS, ACT, seed=3, **SMALL)
    b = rlrobust.make_agent("idql", OBS, ACT, seed=3, **SMALL)
    obs = np.ones((5, 3), np.float32)
    np.testing.assert_array_equal(a.act(obs), b.act(obs))
    np.testing.assert_array_equal(a.act(obs, deterministic=True), a.act(obs, deterministic=True))


def test_c3_one_step_offline_problem():
    """Half the actions near a* = 0.4, half poor in [−1, −0.5], reward −(a − a*)²."""
    rng = np.random.default_rng(0)
    n = 2000
    acts = np.concatenate(
        [np.clip(A_STAR + 0.05 * rng.normal(size=n // 2), -1, 1), rng.uniform(-1.0, -0.5, size=n // 2)]
    ).astype(np.float32)[:, None]
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    ds = Dataset(
        obs,
        acts,
        (-((acts[:, 0] - A_STAR) ** 2)).astype(np.float32),
        obs,
        np.ones(n, bool),
        np.zeros(n, bool),
    )
    agent = rlrobust.make_agent(
        "idql", OBS, ACT, seed=0, learning_rate=1e-3, actor_learning_rate=1e-3, ema_rate=0.01, **SMALL
    )
    for _ in range(500):
        i = rng.integers(0, n, 256)
        agent.update(
            TransitionBatch(
                torch.as_tensor(ds.observations[i]),
                torch.as_tensor(ds.actions[i]),
                torch.as_tensor(ds.rewards[i]),
                torch.as_tensor(ds.next_observations[i]),
                torch.ones(256),
                torch.full((256,), 0.99),
            )
        )
    actions = agent.act(np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32), deterministic=True)
    assert abs(actions.mean() - A_STAR) < 0.15


def test_diagnostics_reach_tensorboard_without_moving_the_training_rng(tmp_path):
    """The spread of the selected actions is logged at log steps (TensorBoard and metrics.jsonl),
    and computing it leaves training unchanged (its noise has its own generator)."""
    from fakes import record_pd_dataset
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlrobust.core.logging import read_metrics

    data = record_pd_dataset()
    small = {**SMALL, "batch_size": 16, "num_samples": 4}
    finals = []
    for log_interval in (2, 1000):
        run = tmp_path / f"log{log_interval}"
        result = rlrobust.train(
            "idql",
            "Pendulum-v1",
            total_steps=4,
            dataset=data,
            run_dir=run,
            log_interval=log_interval,
            final_eval_episodes=0,
            progress=False,
            agent_kwargs=small,
        )
        finals.append(torch.cat([p.flatten() for p in result.agent.score.parameters()]))
    acc = EventAccumulator(str(tmp_path / "log2" / "tb"))
    acc.Reload()
    names = {
        "train/actions/selected_std",
        "train/actions/candidate_std",
        "train/q/selected",
        "train/q/mean",
        "train/v/mean",
    }
    assert names <= set(acc.Tags()["scalars"])
    rows = [r for r in read_metrics(tmp_path / "log2") if "train/actions/selected_std" in r]
    assert [r["step"] for r in rows] == [2, 4] and all(r["train/actions/selected_std"] >= 0 for r in rows)
    assert torch.equal(finals[0], finals[1])
