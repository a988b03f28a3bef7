"""Exact robust dynamic programming against brute force over deterministic policies.

The references here enumerate every deterministic stationary policy of a 3-state, 2-action MDP
and evaluate each one with loops written in this file (the worst case over kernels for a *fixed*
policy uses ``support``, itself checked against LP/primal references in test_kernel_sets.py).
Nominal (radius 0) references use stationary distributions / linear solves only.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlrobust.core.errors import ConfigError
from rlrobust.robust import (
    ModelError,
    make_kernel_set,
    robust_finite_horizon,
    robust_relative_value_iteration,
    robust_value_iteration,
)

SETS = [("contamination", 0.2), ("tv", 0.15), ("chi2", 0.3), ("kl", 0.1), ("wasserstein", 0.3)]


def small_mdp(seed=0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(3), size=(3, 2))
    P[0, 1] = [0.0, 0.7, 0.3]  # a zero in a nominal row
    R = rng.uniform(size=(3, 2))
    return P, R


def policy_gain(P, R, ks, pi):
    """Robust average reward of a fixed deterministic policy: damped relative value iteration."""
    idx = np.arange(len(pi))
    Pp, Rp = P[idx, pi], R[idx, pi]
    h = np.zeros(len(pi))
    for _ in range(20_000):
        th = Rp + ks.support(Pp, h)
        d = th - h
        if d.max() - d.min() < 1e-11:
            return 0.5 * (d.max() + d.min())
        h = 0.5 * h + 0.5 * th
        h -= h[0]
    raise AssertionError("reference evaluation did not converge")


def policy_value(P, R, ks, pi, gamma):
    idx = np.arange(len(pi))
    Pp, Rp = P[idx, pi], R[idx, pi]
    v = np.zeros(len(pi))
    for _ in range(10_000):
        new = Rp + gamma * ks.support(Pp, v)
        if np.abs(new - v).max() < 1e-13:
            return new
        v = new
    raise AssertionError("reference evaluation did not converge")


POLICIES = [np.array(pi) for pi in itertools.product(range(2), repeat=3)]


@pytest.mark.parametrize("name,radius", SETS)
def test_average_reward_matches_policy_enumeration(name, radius):
    P, R = small_mdp()
    ks = make_kernel_set(name, radius)
    gains = [policy_gain(P, R, ks, pi) for pi in POLICIES]
    gain, bias, policy = robust_relative_value_iteration(P, R, ks)
    assert gain == pytest.approx(max(gains), abs=1e-8)
    assert policy_gain(P, R, ks, policy) == pytest.approx(max(gains), abs=1e-8)
    # the robust Bellman equation holds: g + h(s) = max_a R + σ(h)
    q = R + ks.support(P.reshape(6, 3), bias).reshape(3, 2)
    np.testing.assert_allclose(q.max(-1), gain + bias, atol=1e-8)
    assert bias[0] == 0.0
    # a robust gain is never above the nominal one
    nominal, _, _ = robust_relative_value_iteration(P, R, make_kernel_set(name, 0.0))
    assert gain <= nominal + 1e-12


@pytest.mark.parametrize("name,radius", SETS)
def test_discounted_matches_policy_enumeration(name, radius):
    P, R = small_mdp(1)
    ks = make_kernel_set(name, radius)
    values = np.stack([policy_value(P, R, ks, pi, 0.7) for pi in POLICIES])
    v, policy = robust_value_iteration(P, R, ks, 0.7)
    np.testing.assert_allclose(v, values.max(0), atol=1e-8)  # one policy is optimal in every state
    np.testing.assert_allclose(policy_value(P, R, ks, policy, 0.7), values.max(0), atol=1e-8)


def nominal_gain(P, R, pi):
    idx = np.arange(len(pi))
    Pp, Rp = P[idx, pi], R[idx, pi]
    S = len(pi)
    # stationary distribution: μ(P − I) = 0, Σμ = 1
    A = np.vstack([(Pp - np.eye(S)).T, np.ones(S)])
    mu = np.linalg.lstsq(A, np.concatenate([np.zeros(S), [1.0]]), rcond=None)[0]
    return mu @ Rp


@pytest.mark.parametrize("name", [s for s, _ in SETS])
def test_radius_zero_is_nominal(name):
    P, R = small_mdp(2)
    ks = make_kernel_set(name, 0.0)
    gain, _, _ = robust_relative_value_iteration(P, R, ks)
    assert gain == pytest.approx(max(nominal_gain(P, R, pi) for pi in POLICIES), abs=1e-8)
    v, _ = robust_value_iteration(P, R, ks, 0.9)
    idx = np.arange(3)
    exact = np.max([np.linalg.solve(np.eye(3) - 0.9 * P[idx, pi], R[idx, pi]) for pi in POLICIES], axis=0)
    np.testing.assert_allclose(v, exact, atol=1e-8)


@pytest.mark.parametrize("name,radius", SETS)
def test_reward_shift_shifts_gain(name, radius):
    P, R = small_mdp(3)
    ks = make_kernel_set(name, radius)
    g1, h1, pi1 = robust_relative_value_iteration(P, R, ks)
    g2, h2, pi2 = robust_relative_value_iteration(P, R + 2.5, ks)
    assert g2 == pytest.approx(g1 + 2.5, abs=1e-8)
    np.testing.assert_allclose(h2, h1, atol=1e-7)
    np.testing.assert_array_equal(pi1, pi2)


def test_periodic_chain():
    # 0 ↔ 1 deterministically: period 2, where undamped relative value iteration oscillates.
    P = np.zeros((2, 2, 2))
    P[0, :, 1] = 1.0
    P[1, :, 0] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 0.5]])
    gain, _, policy = robust_relative_value_iteration(P, R, make_kernel_set("kl", 0.0))
    assert gain == pytest.approx(0.75, abs=1e-9)
    np.testing.assert_array_equal(policy, [0, 1])
    # a robust set on the same periodic chain, against policy enumeration
    g_rob, _, _ = robust_relative_value_iteration(P, R, make_kernel_set("contamination", 0.2))
    assert g_rob == pytest.approx(
        max(
            policy_gain(P, R, make_kernel_set("contamination", 0.2), np.array(pi))
            for pi in itertools.product(range(2), repeat=2)
        ),
        abs=1e-8,
    )


@pytest.mark.parametrize("name,radius", SETS)
def test_finite_horizon_matches_markov_policy_enumeration(name, radius):
    P, R = small_mdp(4)
    ks = make_kernel_set(name, radius)
    H = 2
    values, _ = robust_finite_horizon(P, R, ks, H)
    best = np.full(3, -np.inf)
    for pis in itertools.product(POLICIES, repeat=H):  # deterministic Markov policies
        v = np.zeros(3)
        for h in reversed(range(H)):
            idx = np.arange(3)
            v = R[idx, pis[h]] + ks.support(P[idx, pis[h]], v)
        best = np.maximum(best, v)
    np.testing.assert_allclose(values[0], best, atol=1e-10)
    # evaluating the uniform policy gives the average over actions step by step
    uniform = np.full((3, 2), 0.5)
    v_uni, q_uni = robust_finite_horizon(P, R, ks, H, policy=uniform)
    np.testing.assert_allclose(v_uni[0], q_uni[0].mean(-1), atol=1e-12)
    assert np.all(v_uni[0] <= values[0] + 1e-12)


def test_bad_models_raise():
    P, R = small_mdp()
    ks = make_kernel_set("tv", 0.1)
    with pytest.raises(ModelError, match=r"R must have shape \(S, A\) = \(3, 2\)"):
        robust_value_iteration(P, R[:, :1], ks, 0.9)
    with pytest.raises(ModelError, match=r"P must have shape \(S, A, S\)"):
        robust_value_iteration(P[:, :, :2], R, ks, 0.9)
    bad = P.copy()
    bad[0, 0, 0] += 0.5
    with pytest.raises(ModelError, match="sum to 1"):
        robust_relative_value_iteration(bad, R, ks)
    with pytest.raises(ConfigError, match="gamma"):
        robust_value_iteration(P, R, ks, 1.0)
    with pytest.raises(ConfigError, match="make_kernel_set"):
        robust_value_iteration(P, R, "tv", 0.9)
