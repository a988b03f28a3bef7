"""Exact robust dynamic programming on tabular models (the ground truth of the robust agents).

All three solvers use the (s, a)-rectangular robust Bellman operator

    (T V)(s) = max_a Q(s, a),   Q(s, a) = R(s, a) + c · σ_{𝒫(P(·|s,a))}(V),

with σ the exact support function of a :class:`~rlrobust.robust.kernel_sets.KernelSet`, evaluated
for all S·A rows at once:

* :func:`robust_value_iteration` — discounted (c = γ), value iteration to a sup-norm tolerance.
* :func:`robust_relative_value_iteration` — average reward (c = 1): the robust Bellman equation
  ``g + h(s) = max_a [R(s, a) + σ(h)]`` solved by relative value iteration on the aperiodicity
  transform ``h ← τ h + (1 − τ) T h`` (each kernel q becomes ``τ e_s + (1 − τ) q``: same gain and
  policies, but no periodic oscillation). The span bounds ``min(Th − h) ≤ g ≤ max(Th − h)`` (T is
  monotone and commutes with adding constants) give the stopping rule.
* :func:`robust_finite_horizon` — episodic backward induction, optimal or for a given policy.

Inputs are NumPy arrays or tensors: ``P`` (S, A, S), ``R`` (S, A). Outputs are NumPy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.robust.kernel_sets import KernelSet, ModelError, check_distribution


def check_model(P: Any, R: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a tabular model; returns float64 tensors ``P`` (S, A, S) and ``R`` (S, A).

    Raises:
        ModelError: wrong ranks, shapes that disagree, rows of P that are not distributions,
            or non-finite rewards.
    """
    P = np.asarray(P.detach().cpu() if isinstance(P, torch.Tensor) else P, dtype=np.float64)
    R = np.asarray(R.detach().cpu() if isinstance(R, torch.Tensor) else R, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ModelError(f"P must have shape (S, A, S), got {P.shape}")
    if R.shape != P.shape[:2]:
        raise ModelError(
            f"R must have shape (S, A) = {P.shape[:2]} to match P of shape {P.shape}, got {R.shape}"
        )
    if not np.all(np.isfinite(R)):
        raise ModelError("R must be finite")
    P = check_distribution(P, "P(·|s, a)")
    return torch.from_numpy(P), torch.from_numpy(R)


def _check_set(kernel_set: Any) -> KernelSet:
    if not isinstance(kernel_set, KernelSet):
        raise ConfigError(
            f"kernel_set must be a KernelSet (rlrobust.robust.make_kernel_set(name, radius)), got {kernel_set!r}"
        )
    return kernel_set


def robust_bellman_q(
    P: torch.Tensor, R: torch.Tensor, kernel_set: KernelSet, v: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """``Q(s, a) = R(s, a) + scale · σ(P(·|s, a), v)`` for all pairs; float64 ``(S, A)``.

    No validation (hot loop of the solvers); see :func:`check_model`.
    """
    S, A, _ = P.shape
    sigma = kernel_set.support_torch(P.reshape(S * A, S), v).reshape(S, A)
    return R + scale * sigma


def robust_value_iteration(
    P: Any, R: Any, kernel_set: KernelSet, gamma: float, *, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal robust discounted values and a greedy deterministic policy.

    Args:
        P: ``(S, A, S)`` nominal kernel. R: ``(S, A)`` rewards.
        kernel_set: the uncertainty set around each row of ``P``.
        gamma: discount in [0, 1).
        tol: sup-norm accuracy of the returned values.

    Returns:
        ``(values (S,), policy (S,) int64)``.
    """
    P_t, R_t = check_model(P, R)
    ks = _check_set(kernel_set)
    if not 0.0 <= gamma < 1.0:
        raise ConfigError(f"gamma={gamma} must lie in [0, 1) for discounted robust value iteration")
    v = torch.zeros(P_t.shape[0], dtype=torch.float64)
    for _ in range(max_iter):
        q = robust_bellman_q(P_t, R_t, ks, v, gamma)
        v_new = q.max(-1).values
        # γ-contraction: ‖v_new − v*‖ ≤ γ/(1−γ)·‖v_new − v‖.
        done = float((v_new - v).abs().max()) * gamma <= tol * (1.0 - gamma)
        v = v_new
        if done:
            break
    q = robust_bellman_q(P_t, R_t, ks, v, gamma)
    return v.numpy(), q.argmax(-1).numpy()


def robust_relative_value_iteration(
    P: Any,
    R: Any,
    kernel_set: KernelSet,
    *,
    tol: float = 1e-9,
    max_iter: int = 100_000,
    aperiodicity: float = 0.5,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Optimal robust average reward (gain), a bias vector and a greedy policy.

    Assumes every kernel in the set is unichain (the gain does not depend on the start state),
    as Wang et al. (2023) do.

    Args:
        P: ``(S, A, S)`` nominal kernel. R: ``(S, A)`` rewards.
        kernel_set: the uncertainty set around each row of ``P``.
        tol: accuracy of the gain (the span bound gap at stopping).
        aperiodicity: τ ∈ (0, 1) of the transform ``h ← τh + (1 − τ)Th`` (handles periodic chains).

    Returns:
        ``(gain, bias (S,) with bias[0] = 0, policy (S,) int64)``.

    Raises:
        RuntimeError: no convergence within ``max_iter`` (e.g. a multichain worst case).
    """
    P_t, R_t = check_model(P, R)
    ks = _check_set(kernel_set)
    if not 0.0 < aperiodicity < 1.0:
        raise ConfigError(f"aperiodicity={aperiodicity} must lie in (0, 1)")
    h = torch.zeros(P_t.shape[0], dtype=torch.float64)
    gap = float("inf")
    for _ in range(max_iter):
        th = robust_bellman_q(P_t, R_t, ks, h).max(-1).values
        diff = th - h
        lo, hi = float(diff.min()), float(diff.max())
        gap = hi - lo
        if gap <= tol:
            break
        h = aperiodicity * h + (1.0 - aperiodicity) * th
        h = h - h[0]  # relative values: keep the iterates bounded
    else:
        raise RuntimeError(
            f"robust relative value iteration did not converge in {max_iter} iterations (span gap {gap:.3g}); "
            "the worst-case kernels may be multichain"
        )
    q = robust_bellman_q(P_t, R_t, ks, h)
    return 0.5 * (lo + hi), (h - h[0]).numpy(), q.argmax(-1).numpy()


def robust_finite_horizon(
    P: Any, R: Any, kernel_set: KernelSet, horizon: int, policy: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Episodic robust backward induction, for the optimal policy or a given one.

    Args:
        P: ``(S, A, S)`` nominal kernel (the same at every step). R: ``(S, A)`` rewards.
        kernel_set: the uncertainty set around each row of ``P``.
        horizon: H ≥ 1 steps.
        policy: ``None`` (optimal), or action probabilities ``(H, S, A)`` / ``(S, A)`` (stationary).

    Returns:
        ``(values (H + 1, S), q (H, S, A))``; ``values[h]`` is the robust value-to-go from step h,
        ``values[H] = 0``.
    """
    P_t, R_t = check_model(P, R)
    ks = _check_set(kernel_set)
    S, A, _ = P_t.shape
    if horizon < 1:
        raise ConfigError(f"horizon={horizon} must be ≥ 1")
    pi = None
    if policy is not None:
        pi = torch.as_tensor(np.asarray(policy, dtype=np.float64))
        if pi.shape == (S, A):
            pi = pi.expand(horizon, S, A)
        if pi.shape != (horizon, S, A):
            raise ModelError(
                f"policy must have shape (H, S, A) = {(horizon, S, A)} or (S, A), got {tuple(pi.shape)}"
            )
        check_distribution(pi.numpy(), "policy(·|s)")
    values = torch.zeros(horizon + 1, S, dtype=torch.float64)
    qs = torch.zeros(horizon, S, A, dtype=torch.float64)
    for h in reversed(range(horizon)):
        qs[h] = robust_bellman_q(P_t, R_t, ks, values[h + 1])
        values[h] = qs[h].max(-1).values if pi is None else (pi[h] * qs[h]).sum(-1)
    return values.numpy(), qs.numpy()
