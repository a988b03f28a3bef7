"""Tabular IWOCS (Zouitine et al., 2024) against brute-force references written here."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlrobust.robust.iwocs_tabular import (
    finite_set_robust_value_iteration,
    policy_evaluation,
    tabular_iwocs,
    windy_walk,
    windy_walk_set,
)

GAMMA = 0.95


def reference_vi(P: np.ndarray, R: np.ndarray, gamma: float, iters: int = 2000) -> np.ndarray:
    """Plain value iteration, Q (S, A), written independently of the library."""
    q = np.zeros_like(R)
    for _ in range(iters):
        q = R + gamma * np.einsum("sat,t->sa", P, q.max(axis=1))
    return q


def reference_hull_vi(kernels: np.ndarray, R: np.ndarray, gamma: float, iters: int = 2000) -> np.ndarray:
    """Robust VI over the sa-rectangular hull: every (s, a) picks its own worst kernel."""
    q = np.zeros_like(R)
    for _ in range(iters):
        v = q.max(axis=1)
        q = R + gamma * np.min([np.einsum("sat,t->sa", P, v) for P in kernels], axis=0)
    return q


def test_windy_walk_model_matches_its_description():
    alpha = 0.4
    P, R, start = windy_walk(alpha)
    assert P.shape == (36, 4, 36) and R.shape == (36, 4) and start == 30
    np.testing.assert_allclose(P.sum(-1), 1.0)
    up = 0
    # Corridor cells (rows 1-3) of columns 0, 2, 4 push back down with probability α, α³, α⁶.
    for col, k in ((0, 1), (2, 3), (4, 6)):
        s, below, above = 2 * 6 + col, 3 * 6 + col, 1 * 6 + col
        assert P[s, up, below] == pytest.approx(alpha**k)
        assert P[s, up, above] == pytest.approx(1 - alpha**k)
    assert P[0, :, 0].tolist() == [1.0] * 4 and R[0].tolist() == [0.0] * 4  # absorbing goal
    assert P[6 * 5 + 1, up, 6 * 4 + 1] == 1.0  # no wind outside the corridors
    assert P[6 * 4 + 1, up, 6 * 4 + 1] == 1.0  # a wall blocks (row 3, col 1)


def test_1_windy_walk_iwocs_reaches_robust_value_within_three_iterations():
    kernels, R, s0, alphas = windy_walk_set(25, 0.5)
    assert len(alphas) == 25 and alphas[-1] == 0.5
    # Brute force: the worst wind's optimal value (V*_𝒯 = min_T V*_T, no duality gap) ...
    brute = min(reference_vi(P, R, GAMMA)[s0].max() for P in kernels)
    # ... equals robust VI over the rectangular hull here (all corridors are worst at the same α).
    assert reference_hull_vi(kernels, R, GAMMA)[s0].max() == pytest.approx(brute, abs=1e-8)
    result = tabular_iwocs(kernels, R, GAMMA, s0, initial=0, epsilon=1e-6)
    assert result.stopped and len(result.kernels) <= 3
    assert result.values[-1] == pytest.approx(brute, abs=1e-6)
    # The final candidate really achieves it against every wind level.
    worst = min(policy_evaluation(P, R, result.policy, GAMMA)[s0] for P in kernels)
    assert worst == pytest.approx(brute, abs=1e-6)
    assert result.kernels[1] == 24  # the strongest wind is found first (α = 0.5)
    v, _ = finite_set_robust_value_iteration(kernels, R, GAMMA, tol=1e-10)
    assert v[s0] == pytest.approx(brute, abs=1e-6)


def random_finite_set(seed: int, n_kernels: int = 6, S: int = 4, A: int = 2):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(S), size=(n_kernels, S, A)), rng.normal(size=(S, A))


@pytest.mark.parametrize("seed", range(8))
def test_2_values_never_increase_and_a_repeated_kernel_stops(seed):
    kernels, R = random_finite_set(seed)
    result = tabular_iwocs(kernels, R, 0.9, 0, epsilon=1e-9, tol=1e-12)
    assert all(b <= a + 1e-9 for a, b in zip(result.values, result.values[1:]))
    # Q_i is the min over the chosen kernels' Q* (reference VI): check the final one.
    q_ref = np.min([reference_vi(kernels[k], R, 0.9) for k in result.kernels], axis=0)
    np.testing.assert_allclose(result.q, q_ref, atol=1e-7)
    for i, k in enumerate(result.worst_kernels):
        if k in result.kernels[: i + 1]:
            assert result.stopped and i == len(result.worst_kernels) - 1


def test_2_starting_from_the_worst_kernel_stops_at_once():
    kernels, R, s0, _ = windy_walk_set(25, 0.5)
    result = tabular_iwocs(kernels, R, GAMMA, s0, initial=24)
    assert result.stopped and result.kernels == [24] and result.worst_kernels == [24]


@pytest.mark.parametrize("seed", range(10))
def test_3_rectangular_set_upper_bound_and_exact_value_when_the_value_rule_stops(seed):
    rng = np.random.default_rng(seed)
    S, A, gamma = 3, 2, 0.9
    base, alt = rng.dirichlet(np.ones(S), size=(S, A)), rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.normal(size=(S, A))
    kernels = []
    for choice in itertools.product([0, 1], repeat=S * A):  # the set IS its sa-rectangular hull
        kernels.append(np.where(np.array(choice, dtype=bool).reshape(S, A, 1), alt, base))
    kernels = np.stack(kernels)
    q_robust = reference_hull_vi(kernels, R, gamma)
    result = tabular_iwocs(kernels, R, gamma, 0, epsilon=1e-9, tol=1e-12)
    assert (result.q >= q_robust - 1e-7).all()  # property 1: Q_i ≥ Q*_𝒯 everywhere
    worst = min(policy_evaluation(P, R, result.policy, gamma)[0] for P in kernels)
    if abs(result.worst_values[-1] - result.values[-1]) <= 1e-9:  # the value rule fired
        assert result.values[-1] == pytest.approx(q_robust[0].max(), abs=1e-7)
        assert worst == pytest.approx(q_robust[0].max(), abs=1e-7)
