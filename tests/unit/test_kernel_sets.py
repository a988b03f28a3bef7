"""Uncertainty sets: exact support functions against independent references, MLMC unbiasedness.

References are written here, independently of ``rlrobust.robust``:
* contamination, TV, Wasserstein: linear programs (``scipy.optimize.linprog``) over q or the
  transport plan;
* χ²: primal brute force over active sets (every subset T of supp p, closed-form minimiser of a
  linear function over an ellipse ∩ hyperplane, kept when non-negative);
* KL: the primal Gibbs form q_λ ∝ p·exp(−v/λ) with λ found by a root solve of KL(q_λ‖p) = δ
  (``scipy.optimize.brentq``), or the vertex when −log p(argmin v) ≤ δ.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq, linprog
from scipy.special import logsumexp, xlogy

from rlrobust.core.errors import ConfigError, RlrobustError
from rlrobust.robust import make_kernel_set
from rlrobust.robust.kernel_sets import ModelError

NAMES = ["contamination", "tv", "chi2", "kl", "wasserstein"]


def lp_support(name, p, v, delta, metric=None, order=1.0):
    S = len(p)
    if name == "contamination":
        res = linprog(delta * v, A_eq=np.ones((1, S)), b_eq=[1], bounds=[(0, None)] * S, method="highs")
        return (1 - delta) * p @ v + res.fun
    if name == "tv":  # variables [q, t], t ≥ |q − p|, Σ t ≤ 2δ
        eye = np.eye(S)
        a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, S)), np.ones((1, S))]])
        res = linprog(
            np.concatenate([v, np.zeros(S)]),
            A_ub=a_ub,
            b_ub=np.concatenate([p, -p, [2 * delta]]),
            A_eq=np.concatenate([np.ones(S), np.zeros(S)])[None],
            b_eq=[1],
            bounds=[(0, None)] * (2 * S),
            method="highs",
        )
        return res.fun
    assert name == "wasserstein"  # transport plan π_ij from p_i to q_j
    d = np.abs(np.arange(S)[:, None] - np.arange(S)[None]) if metric is None else metric
    res = linprog(
        np.tile(v, S),
        A_ub=(d**order).reshape(1, -1),
        b_ub=[delta**order],
        A_eq=np.kron(np.eye(S), np.ones((1, S))),
        b_eq=p,
        bounds=[(0, None)] * S * S,
        method="highs",
    )
    return res.fun


def chi2_bruteforce(p, v, delta):
    supp = np.flatnonzero(p > 0)
    best = math.inf
    for k in range(1, len(supp) + 1):
        for subset in itertools.combinations(supp, k):
            t = np.array(subset)
            pt, vt = p[t], v[t]
            mass = pt.sum()
            c = 1 - mass  # mass moved onto T from the zeroed states
            r = delta - (1 - mass) - c * c / mass  # budget left for the zero-sum part y
            if r < -1e-15:
                continue
            m = pt @ vt / mass
            spread = math.sqrt(max(pt @ (vt - m) ** 2, 0.0))
            y = -math.sqrt(max(r, 0.0)) * pt * (vt - m) / spread if spread > 1e-12 else np.zeros(k)
            q = pt + c * pt / mass + y
            if np.all(q >= -1e-12):
                best = min(best, q @ vt)
    return best


def kl_primal(p, v, delta):
    s = p > 0
    ps, vs = p[s], v[s]
    vmin = vs.min()
    p_best = ps[vs <= vmin + 1e-15].sum()
    if -math.log(p_best) <= delta:
        return vmin

    def gibbs(log_lam):
        logits = np.log(ps) - (vs - vmin) / math.exp(log_lam)
        return np.exp(logits - logsumexp(logits))

    def excess(log_lam):
        q = gibbs(log_lam)
        return np.sum(xlogy(q, q / ps)) - delta

    lo, hi = -40.0, 40.0  # KL(q_λ) falls from −log p_best (λ→0) to 0 (λ→∞)
    log_lam = brentq(excess, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=500)
    return gibbs(log_lam) @ vs


def reference(name, p, v, delta, **kw):
    if name == "chi2":
        return chi2_bruteforce(p, v, delta)
    if name == "kl":
        return kl_primal(p, v, delta)
    return lp_support(name, p, v, delta, **kw)


def random_instances(seed, n):
    rng = np.random.default_rng(seed)
    for trial in range(n):
        S = int(rng.integers(2, 7))
        p = rng.dirichlet(np.ones(S))
        if trial % 3 == 0:  # zeros in p
            p[rng.integers(S)] = 0.0
            p /= p.sum()
        yield rng, p, rng.normal(size=S) * 3


MAX_RADIUS = {"contamination": 1.0, "tv": 1.0, "chi2": 6.0, "kl": 3.0, "wasserstein": 4.0}


@pytest.mark.parametrize("name", NAMES)
def test_support_matches_independent_reference(name):
    for trial, (rng, p, v) in enumerate(random_instances(NAMES.index(name), 40)):
        # a quarter of the radii at the top of the range: past the vertex for most instances
        delta = MAX_RADIUS[name] if trial % 4 == 0 else float(rng.uniform(0, MAX_RADIUS[name]))
        got = make_kernel_set(name, delta).support(p, v)
        want = reference(name, p, v, delta)
        assert abs(got - want) <= 1e-6, (name, p, v, delta, got, want)


def test_vertex_cases_are_exact():
    p = np.array([0.5, 0.0, 0.3, 0.2])
    v = np.array([1.0, -5.0, 2.0, 0.5])
    # sets with q ≪ p reach argmin over supp p (value 0.5); the others reach the global min −5
    assert make_kernel_set("kl", -math.log(0.2) + 1e-9).support(p, v) == pytest.approx(0.5, abs=1e-12)
    assert make_kernel_set("chi2", 0.8 / 0.2).support(p, v) == pytest.approx(0.5, abs=1e-12)
    assert make_kernel_set("tv", 1.0).support(p, v) == pytest.approx(-5.0, abs=1e-12)
    assert make_kernel_set("contamination", 1.0).support(p, v) == pytest.approx(-5.0, abs=1e-12)
    assert make_kernel_set("wasserstein", 10.0).support(p, v) == pytest.approx(-5.0, abs=1e-12)
    # radius 0: the nominal expectation
    for name in NAMES:
        assert make_kernel_set(name, 0.0).support(p, v) == pytest.approx(p @ v, abs=1e-12)


def test_wasserstein_custom_metric_and_order():
    rng = np.random.default_rng(3)
    for _ in range(10):
        pts = rng.normal(size=(5, 2))
        metric = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        p, v = rng.dirichlet(np.ones(5)), rng.normal(size=5)
        for order in (1.0, 2.0):
            delta = float(rng.uniform(0, 2))
            got = make_kernel_set("wasserstein", delta, metric=metric, order=order).support(p, v)
            assert abs(got - lp_support("wasserstein", p, v, delta, metric=metric, order=order)) <= 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_batched_torch_equals_rowwise(name):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(6), size=32)
    p[::4, 2] = 0.0
    p /= p.sum(-1, keepdims=True)
    v = rng.normal(size=(32, 6))
    ks = make_kernel_set(name, MAX_RADIUS[name] / 5)
    batched = ks.support_torch(torch.from_numpy(p), torch.from_numpy(v)).numpy()
    rows = np.array([ks.support(p[i], v[i]) for i in range(32)])
    np.testing.assert_allclose(batched, rows, atol=1e-12)
    # broadcasting one value vector over many rows
    shared = ks.support_torch(torch.from_numpy(p), torch.from_numpy(v[0])).numpy()
    np.testing.assert_allclose(shared, [ks.support(p[i], v[0]) for i in range(32)], atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_mlmc_estimator_is_unbiased(name):
    p = np.array([0.1, 0.3, 0.0, 0.4, 0.2])
    v = np.array([2.0, -1.0, -3.0, 0.5, 1.5])
    ks = make_kernel_set(
        name, {"contamination": 0.3, "tv": 0.2, "chi2": 0.5, "kl": 0.2, "wasserstein": 0.4}[name]
    )
    exact = ks.support(p, v)
    cdf = torch.from_numpy(np.cumsum(p))
    gen = torch.Generator().manual_seed(0)

    def sampler(rows, n):  # i.i.d. draws from p for every row
        u = torch.rand(len(rows), n, generator=gen, dtype=torch.float64)
        return torch.searchsorted(cdf, u, right=True).clamp(max=4)

    draws = ks.estimate(torch.from_numpy(v).expand(40_000, 5), sampler, gen).numpy()
    stderr = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - exact) <= 4 * stderr + 1e-12, (draws.mean(), exact, stderr)
    # the plug-in estimate from few samples is biased for the non-linear sets; MLMC must not be
    assert np.isfinite(draws).all()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="unknown uncertainty set 'l2'.*'chi2'"):
        make_kernel_set("l2", 0.1)
    with pytest.raises(ConfigError, match=r"outside the valid range \[0.0, 1.0\]"):
        make_kernel_set("tv", 1.5)
    with pytest.raises(ConfigError, match="valid range"):
        make_kernel_set("kl", -0.1)
    with pytest.raises(ConfigError, match="takes no options"):
        make_kernel_set("kl", 0.1, metric=np.eye(2))
    with pytest.raises(ConfigError, match="zero diagonal"):
        make_kernel_set("wasserstein", 0.1, metric=np.ones((3, 3)))
    ks = make_kernel_set("kl", 0.1)
    with pytest.raises(ModelError, match="sum to 1"):
        ks.support(np.array([0.5, 0.6]), np.zeros(2))
    with pytest.raises(ModelError, match="non-negative"):
        ks.support(np.array([1.5, -0.5]), np.zeros(2))
    with pytest.raises(ModelError, match="does not match"):
        ks.support(np.array([0.5, 0.5]), np.zeros(3))
    assert issubclass(ModelError, RlrobustError) and issubclass(ModelError, ValueError)


# ---------------------------------------------------------------------- the MLMC fast path
FAST = [
    ("tv", [0.05, 0.4, 1.0]),
    ("chi2", [0.05, 0.5, 8.0]),
    ("kl", [0.01, 0.2, 3.0]),
    ("wasserstein", [0.1, 0.7, 6.0]),
]


def empirical_stack(rng, n_rows, S):
    """(3, N, S) distributions sharing each row's v: the all / even / odd empirical distributions of
    2^{m+1} samples (m = 0..5) from a sparse random row, plus a few dense rows."""
    p = np.zeros((3, n_rows, S))
    for i in range(n_rows):
        nominal = rng.dirichlet(np.ones(S)) * (rng.uniform(size=S) < 0.6)
        nominal[rng.integers(S)] += 0.1
        nominal /= nominal.sum()
        half = 2 ** int(rng.integers(0, 6))
        even, odd = rng.multinomial(half, nominal), rng.multinomial(half, nominal)
        p[:, i] = (even + odd) / (2 * half), even / half, odd / half
        if i % 7 == 0:
            p[2, i] = nominal
    return p


@pytest.mark.parametrize("name,radii", FAST)
def test_shared_point_and_pair_paths_equal_the_reference_per_row(name, radii):
    rng = np.random.default_rng(11)
    for delta in radii:
        for S in (3, 6):
            ks = make_kernel_set(name, delta)
            p = empirical_stack(rng, 60, S)
            v = rng.normal(size=(60, S)) * 2
            v[::5, 1] = v[::5, 0]  # ties
            got = ks.support_shared(torch.from_numpy(p), torch.from_numpy(v)).numpy()
            x, y = rng.integers(S, size=60), rng.integers(S, size=60)
            point = ks.support_point(torch.from_numpy(v), torch.from_numpy(x)).numpy()
            pair = ks.support_pair(torch.from_numpy(v), torch.from_numpy(x), torch.from_numpy(y)).numpy()
            for i in range(60):
                for k in range(3):  # the row-wise exact solver, itself checked against LPs above
                    assert abs(got[k, i] - ks.support(p[k, i], v[i])) <= 1e-8, (delta, S, k, p[k, i], v[i])
                e_x, e_y = np.eye(S)[x[i]], np.eye(S)[y[i]]
                assert abs(point[i] - ks.support(e_x, v[i])) <= 1e-8
                assert abs(pair[i] - ks.support(0.5 * (e_x + e_y), v[i])) <= 1e-8
            for i in range(0, 60, 6):  # and against the independent references
                tol = 1e-8 if name in ("chi2", "kl") else 1e-7  # HiGHS' own tolerance for the LPs
                assert abs(got[0, i] - reference(name, p[0, i], v[i], delta)) <= tol
                assert (
                    abs(pair[i] - reference(name, 0.5 * (np.eye(S)[x[i]] + np.eye(S)[y[i]]), v[i], delta))
                    <= tol
                )


def test_wasserstein_fast_path_with_custom_metric_and_order():
    rng = np.random.default_rng(5)
    pts = rng.normal(size=(5, 2))
    metric = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    for order, delta in ((1.0, 0.3), (2.0, 0.8), (1.0, 5.0)):
        ks = make_kernel_set("wasserstein", delta, metric=metric, order=order)
        p = empirical_stack(rng, 30, 5)
        v = rng.normal(size=(30, 5))
        got = ks.support_shared(torch.from_numpy(p), torch.from_numpy(v)).numpy()
        x = rng.integers(5, size=30)
        point = ks.support_point(torch.from_numpy(v), torch.from_numpy(x)).numpy()
        for i in range(30):
            want = lp_support("wasserstein", p[0, i], v[i], delta, metric=metric, order=order)
            assert abs(got[0, i] - want) <= 1e-7
            want = lp_support("wasserstein", np.eye(5)[x[i]], v[i], delta, metric=metric, order=order)
            assert abs(point[i] - want) <= 1e-7


@pytest.mark.parametrize("name,radius", [("tv", 0.3), ("chi2", 0.5), ("kl", 0.2), ("wasserstein", 0.4)])
def test_mlmc_estimate_equals_the_plain_formula_draw_by_draw(name, radius):
    """With a deterministic sampler, every estimate equals σ(P̂_1) + [σ(P̂_all) − ½(σ(P̂_even) +
    σ(P̂_odd))]/P(N) computed row by row with ``support``, N read off the sample count requested."""
    S, n_rows, psi = 5, 400, 0.6
    rng = np.random.default_rng(2)
    v = rng.normal(size=(n_rows, S))
    seeds = rng.integers(2**31, size=n_rows)
    requested = np.zeros(n_rows, dtype=np.int64)

    def sampler(rows, n):  # row r's i-th sample depends only on (r, i)
        rows = rows.numpy()
        requested[rows] = n
        out = [np.random.default_rng(seeds[r]).choice(S, size=n, p=[0.4, 0.3, 0.0, 0.2, 0.1]) for r in rows]
        return torch.as_tensor(np.stack(out))

    ks = make_kernel_set(name, radius)
    got = ks.estimate(torch.from_numpy(v), sampler, torch.Generator().manual_seed(0), psi).numpy()
    for r in range(n_rows):
        n = int(requested[r])
        level = int(math.log2(n)) - 1
        samples = sampler(torch.tensor([r]), n)[0].numpy()
        emp = [
            np.bincount(s, minlength=S) / len(s) for s in (samples[:1], samples, samples[0::2], samples[1::2])
        ]
        sig = [ks.support(e, v[r]) for e in emp]
        prob = psi * (1 - psi) ** level
        want = sig[0] + (sig[1] - 0.5 * (sig[2] + sig[3])) / prob
        assert abs(got[r] - want) <= 1e-9 / prob, (r, level, got[r], want)


@pytest.mark.parametrize("name,radius", [("tv", 0.2), ("chi2", 0.5), ("kl", 0.2), ("wasserstein", 0.4)])
def test_mlmc_unbiased_on_every_pair_of_a_garnet(name, radius):
    from rlrobust.envs.tabular import garnet

    env = garnet(6, 3, 3, seed=4)
    model, gen = env.generative_model(), torch.Generator().manual_seed(1)
    rng = np.random.default_rng(4)
    pairs = np.array([(s, a) for s in range(6) for a in range(3)])
    values = rng.normal(size=(len(pairs), 6))  # a different v for each pair
    reps = 3000
    s = torch.as_tensor(pairs[:, 0]).repeat(reps)
    a = torch.as_tensor(pairs[:, 1]).repeat(reps)
    v = torch.as_tensor(values).repeat(reps, 1)
    ks = make_kernel_set(name, radius)
    draws = (
        ks.estimate(v, lambda rows, n: model.sample(s[rows], a[rows], n, gen), gen).numpy().reshape(reps, -1)
    )
    exact = ks.support(env.P[pairs[:, 0], pairs[:, 1]], values)
    z = (draws.mean(0) - exact) / (draws.std(0) / math.sqrt(reps))
    assert np.all(np.abs(z) <= 4.5), z  # 18 pairs: a |z| > 4.5 by chance has probability ~1e-4
