"""RIQL's data-corruption protocol (Yang et al., ICLR 2024, and the authors' ``attack.py``).

A fraction ``rate`` of the transitions is corrupted in one element:

=================  =====================================================================
kind               random (``mode="random"``)          adversarial (``mode="adversarial"``)
=================  =====================================================================
``observations``   ``s += U[−ε, ε]·std``                 ``s += p·std`` minimising ``Q(s + p·std, a)``
``actions``        ``a += U[−ε, ε]·std`` (clipped)        ``a += p·std`` minimising ``Q(s, a + p·std)``
``rewards``        ``r ← 30·U[−ε, ε]``                   ``r ← −ε·r``
``dynamics``       ``s' += U[−ε, ε]·std``                ``s' += p·std`` minimising ``Q(s̃', π(s̃'))``
=================  =====================================================================

``ε`` is ``scale`` and ``std`` the per-dimension standard deviation of the clean column. The
adversarial attack runs ``attack_steps`` Adam steps (lr ``0.01·ε``) on ``p``, clamped to
``[−ε, ε]`` after every step, against a critic the caller provides (e.g. a trained RIQL/IQL agent's
:meth:`~rlrobust.agents.riql.RIQL.q_value`).

Deviations from ``attack.py``: the corrupted rows are the first ``round(rate·N)`` entries of a
seeded permutation (not a Bernoulli mask), so the count is exact; ``p`` starts uniform in
``[−ε, ε]`` and ``std`` is applied once (the original multiplies it in twice); corrupted actions
are clipped to the dataset's Box action space; nothing is cached on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.errors import ConfigError, choices
from rlrobust.core.seeding import numpy_generator, torch_generator
from rlrobust.data.dataset import Dataset, DatasetError

KINDS = ("observations", "actions", "rewards", "dynamics")
MODES = ("random", "adversarial")
_COLUMN = {"observations": "observations", "actions": "actions", "dynamics": "next_observations"}

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Actor = Callable[[torch.Tensor], torch.Tensor]


def corrupt(
    dataset: Dataset,
    *,
    kind: str,
    rate: float,
    scale: float,
    mode: str = "random",
    seed: int = 0,
    critic: Critic | None = None,
    actor: Actor | None = None,
    attack_steps: int = 100,
    attack_lr: float | None = None,
    chunk_size: int = 8192,
) -> Dataset:
    """A corrupted copy of ``dataset``; the input is never modified.

    Exactly ``round(rate·N)`` rows are corrupted; every other value of every array is bitwise
    unchanged. ``extras["corrupted"]`` flags the rows (OR-ed with earlier corruptions) and a
    record ``{kind, mode, rate, scale, seed, count}`` is appended to ``metadata["corruption"]``.

    Args:
        dataset: a validated dataset.
        kind: ``"observations"``, ``"actions"``, ``"rewards"`` or ``"dynamics"`` (next observations).
        rate: fraction ``c ∈ [0, 1]`` of corrupted transitions.
        scale: corruption range ``ε > 0``.
        mode: ``"random"`` or ``"adversarial"``.
        seed: seeds the row choice, the noise and the attack's initial perturbation.
        critic: ``critic(obs (B, obs_dim), act (B, act_dim)) -> (B,)`` differentiable Q, needed
            for adversarial observations, actions and dynamics.
        actor: ``actor(obs) -> act`` differentiable policy, needed for adversarial dynamics.
        attack_steps: Adam steps of the adversarial attack.
        attack_lr: Adam learning rate (default ``0.01·scale``).
        chunk_size: rows attacked together.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown corruption kind {kind!r}; valid: {choices(KINDS)}")
    if mode not in MODES:
        raise ConfigError(f"unknown corruption mode {mode!r}; valid: {choices(MODES)}")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"corruption rate must lie in [0, 1], got {rate}")
    if scale <= 0:
        raise ConfigError(f"corruption scale must be > 0, got {scale}")
    if kind == "actions" and not np.issubdtype(dataset.actions.dtype, np.floating):
        raise DatasetError(
            "action corruption needs continuous (float) actions; this dataset has discrete ones"
        )
    n = len(dataset)
    count = int(round(rate * n))
    rng = numpy_generator(seed)
    rows = np.sort(rng.permutation(n)[:count])
    out = dataset.copy()

    if kind == "rewards":
        if mode == "random":
            out.rewards[rows] = (30.0 * rng.uniform(-scale, scale, size=count)).astype(np.float32)
        else:
            out.rewards[rows] = (-scale * dataset.rewards[rows]).astype(np.float32)
    else:
        column = _COLUMN[kind]
        clean = getattr(dataset, column)
        std = clean.reshape(n, -1).std(axis=0).reshape(clean.shape[1:])
        if mode == "random":
            noise = rng.uniform(-scale, scale, size=(count, *clean.shape[1:])) * std
            values = clean[rows] + noise
        else:
            values = _adversarial(
                dataset,
                kind,
                rows,
                std,
                scale,
                critic,
                actor,
                seed,
                attack_steps,
                attack_lr if attack_lr is not None else 0.01 * scale,
                chunk_size,
            )
        if kind == "actions" and isinstance(dataset.metadata.get("action_space"), gym.spaces.Box):
            space = dataset.metadata["action_space"]
            values = np.clip(values, space.low, space.high)
        getattr(out, column)[rows] = values.astype(clean.dtype)

    flags = np.zeros(n, dtype=bool)
    flags[rows] = True
    if "corrupted" in dataset.extras:
        flags |= np.asarray(dataset.extras["corrupted"], dtype=bool)
    record = {
        "kind": kind,
        "mode": mode,
        "rate": float(rate),
        "scale": float(scale),
        "seed": int(seed),
        "count": count,
    }
    return replace(
        out,
        metadata={**out.metadata, "corruption": [*dataset.metadata.get("corruption", []), record]},
        extras={**out.extras, "corrupted": flags},
    )


def _adversarial(
    dataset: Dataset,
    kind: str,
    rows: np.ndarray,
    std: np.ndarray,
    scale: float,
    critic: Critic | None,
    actor: Actor | None,
    seed: int,
    steps: int,
    lr: float,
    chunk_size: int,
) -> np.ndarray:
    """Gradient attack: per row, the perturbation ``p ∈ [−ε, ε]^d`` minimising the critic's value."""
    if critic is None or (kind == "dynamics" and actor is None):
        need = "critic(obs, act) and actor(obs)" if kind == "dynamics" else "critic(obs, act)"
        raise ConfigError(
            f"adversarial {kind} corruption needs a differentiable {need}, e.g. a trained RIQL agent's "
            "q_value / policy methods"
        )
    gen = torch_generator(seed)
    std_t = torch.as_tensor(std, dtype=torch.float32)
    column = getattr(dataset, _COLUMN[kind])
    result = np.empty((len(rows), *column.shape[1:]), dtype=np.float32)
    for start in range(0, len(rows), chunk_size):
        idx = rows[start : start + chunk_size]
        base = torch.as_tensor(column[idx], dtype=torch.float32)
        obs = torch.as_tensor(dataset.observations[idx], dtype=torch.float32)
        act = torch.as_tensor(dataset.actions[idx], dtype=torch.float32)
        p = ((torch.rand(base.shape, generator=gen) * 2 - 1) * scale).requires_grad_(True)
        opt = torch.optim.Adam([p], lr=lr)
        for _ in range(steps):
            x = base + p * std_t
            if kind == "observations":
                q = critic(x, act)
            elif kind == "actions":
                q = critic(obs, x)
            elif actor is not None:  # dynamics (checked above: it has an actor)
                q = critic(x, actor(x))
            # autograd.grad leaves the critic's own .grad fields untouched.
            (grad,) = torch.autograd.grad(q.mean(), [p])
            p.grad = grad
            opt.step()
            with torch.no_grad():
                p.clamp_(-scale, scale)
        result[start : start + len(idx)] = (base + p * std_t).detach().numpy()
    return result
