"""Kernel uncertainty sets: exact support functions and unbiased sample estimators.

For a nominal next-state distribution ``p`` (one row ``P̃(·|s, a)``) and a value vector ``v`` the
*support function* of an uncertainty set ``𝒫(p)`` is

    σ(p, v) = min_{q ∈ 𝒫(p)} q·v,

the worst-case expected next value that robust Bellman operators need (algorithms.md §6, the
sets of Wang et al., ICML 2023). Five sets, all (s, a)-rectangular and centred on ``p``:

==============  =======================================  ===========  ======================
name            set                                      radius δ     σ computed by
==============  =======================================  ===========  ======================
contamination   {(1−δ)p + δq : q ∈ Δ}                    [0, 1]       closed form
tv              {q ∈ Δ : ½‖q − p‖₁ ≤ δ}                  [0, 1]       move mass, sorted v
chi2            {q ∈ Δ, q ≪ p : Σ (q−p)²/p ≤ δ}          [0, ∞)       dual, sorted breakpoints
kl              {q ∈ Δ, q ≪ p : KL(q‖p) ≤ δ}             [0, ∞)       dual, safeguarded Newton
wasserstein     {q ∈ Δ : W_l(q, p) ≤ δ}, metric d        [0, ∞)       dual, exact cutting planes
==============  =======================================  ===========  ======================

All exact computations run in float64 torch on whole batches of rows (:meth:`KernelSet.support_torch`);
:meth:`KernelSet.support` is the validated NumPy front end for one row or a stack of rows.

Sample estimators (:meth:`KernelSet.estimate`) are unbiased estimates of σ from next-state samples
of the nominal kernel only: contamination is linear in ``p`` (one sample suffices); the other
sets use the multilevel Monte Carlo (MLMC) estimator of Blanchet & Glynn as in Wang et al. (2023):
draw ``N ~ Geom(Ψ)`` (``P(N = k) = Ψ(1−Ψ)^k``) and ``2^{N+1}`` samples, then

    σ̂ = σ(P̂_1) + [σ(P̂_all) − ½(σ(P̂_even) + σ(P̂_odd))] / P(N),

which telescopes to σ(p) in expectation. ``Ψ`` trades cost for variance: the expected number of
samples ``2Ψ/(2Ψ−1)`` is finite only for ``Ψ > ½``, and the variance stays finite for smooth σ only
for ``Ψ < ¾`` (our KL simulation became heavy-tailed at 0.75, algorithms.md §6). Default Ψ = 0.6
(6 samples per estimate on average). ``N`` is capped at ``max_level`` (default 20, i.e. ≤ 2²¹
samples; the tail ``P(N > 20) ≈ 1e-8`` is folded into the last level), so the estimator is unbiased
for σ of a 2²¹-sample empirical distribution, whose distance to σ(p) is far below sampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

from rlrobust.core.errors import ConfigError, RlrobustError, choices

#: ``sampler(rows, n) -> (len(rows), n)`` int64 next states drawn from the nominal rows ``rows``.
Sampler = Callable[[torch.Tensor, int], torch.Tensor]


class ModelError(RlrobustError, ValueError):
    """A transition model, distribution or value vector is malformed (shape, sign, sum, NaN)."""


def check_distribution(p: np.ndarray, what: str = "p", atol: float = 1e-6) -> np.ndarray:
    """Validate rows of probabilities (last axis) and return them renormalised, float64."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ModelError(f"{what} must have a non-empty last axis of next-state probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ModelError(f"{what} must hold finite non-negative probabilities; got min {np.nanmin(p):.3g}")
    sums = p.sum(-1)
    if np.any(np.abs(sums - 1.0) > atol):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        raise ModelError(f"{what} rows must sum to 1 (within {atol}); found a row summing to {worst:.8g}")
    return p / sums[..., None]


class KernelSet:
    """Base class: an uncertainty set around each nominal row, with radius ``radius``.

    Subclasses implement :meth:`_support` (exact, batched, float64) and, where a cheaper unbiased
    estimator than MLMC exists, :meth:`estimate`.
    """

    name: ClassVar[str] = ""
    #: the closed interval of valid radii
    radius_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    #: every q in the set satisfies q ≪ p (only the support of p matters)
    absolutely_continuous: ClassVar[bool] = False

    def __init__(self, radius: float) -> None:
        lo, hi = self.radius_range
        if not isinstance(radius, (int, float, np.floating)) or not (lo <= float(radius) <= hi) or math.isnan(radius):
            raise ConfigError(
                f"radius {radius!r} is outside the valid range [{lo}, {hi}] of the {self.name!r} uncertainty set"
            )
        self.radius = float(radius)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(radius={self.radius})"

    # ------------------------------------------------------------------ exact support
    def support(self, p: np.ndarray, v: np.ndarray) -> float | np.ndarray:
        """Exact ``min_{q ∈ 𝒫(p)} q·v`` (validated NumPy front end).

        Args:
            p: ``(S,)`` nominal distribution, or ``(N, S)`` rows.
            v: ``(S,)`` values (broadcast over rows) or ``(N, S)``.

        Returns:
            A float for one row, else an ``(N,)`` float64 array.

        Raises:
            ModelError: ``p`` is not a distribution, ``v`` is not finite, or shapes disagree.
        """
        p = check_distribution(p)
        v = np.asarray(v, dtype=np.float64)
        if v.shape[-1:] != p.shape[-1:] or v.ndim > 2 or p.ndim > 2:
            raise ModelError(f"v of shape {v.shape} does not match p of shape {p.shape}; valid: (S,) or (N, S) each")
        if not np.all(np.isfinite(v)):
            raise ModelError("v must be finite")
        out = self.support_torch(torch.from_numpy(p), torch.from_numpy(v)).numpy()
        return float(out) if out.ndim == 0 else out

    def support_torch(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Batched exact support: ``p``, ``v`` broadcast to ``(..., S)``; returns ``(...)``.

        No validation (hot path); computed in float64 and returned in ``p``'s floating dtype.
        """
        p, v = torch.broadcast_tensors(p, v)
        lead = p.shape[:-1]
        p64 = p.reshape(-1, p.shape[-1]).to(torch.float64)
        v64 = v.reshape(-1, v.shape[-1]).to(torch.float64)
        if self.radius == 0.0:
            out = (p64 * v64).sum(-1)
        else:
            if self.absolutely_continuous and p64.shape[0] > 0:
                # q ≪ p: states outside supp p play no role, so sparse rows (e.g. Garnet's
                # branching) are compressed to their largest support size first: exact, and
                # S/k times less work.
                k = int((p64 > 0).sum(-1).max())
                if 0 < k <= p64.shape[-1] // 2:
                    idx = p64.topk(k, dim=-1).indices
                    p64, v64 = p64.gather(-1, idx), v64.gather(-1, idx)
            out = self._support(p64, v64)
        dtype = p.dtype if p.is_floating_point() else torch.float64
        return out.reshape(lead).to(dtype)

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # (N, S), (N, S) -> (N,)
        raise NotImplementedError

    # ------------------------------------------------------------------ sample estimators
    def estimate(
        self,
        v: torch.Tensor,
        sampler: Sampler,
        generator: torch.Generator | None = None,
        psi: float = 0.6,
        max_level: int = 20,
    ) -> torch.Tensor:
        """Unbiased MLMC estimate of σ for each row, from nominal next-state samples only.

        Args:
            v: ``(N, S)`` value vector of each row (float64 recommended: level differences are
                divided by probabilities as small as ``Ψ(1−Ψ)^max_level``).
            sampler: ``sampler(rows, n)`` returns ``(len(rows), n)`` next states drawn from the
                nominal distributions of ``rows`` (indices into the N rows).
            generator: draws the levels ``N``.
            psi: the geometric parameter Ψ ∈ (0.5, 1); see the module docstring.
            max_level: cap on ``N`` (the tail mass goes to the last level).

        Returns:
            ``(N,)`` estimates, one per row.
        """
        if not 0.5 < psi < 1.0:
            raise ConfigError(f"MLMC parameter psi={psi} must lie in (0.5, 1) (finite expected cost); 0.6 is the default")
        n_rows, n_states = v.shape
        device = v.device
        u = torch.rand(n_rows, generator=generator, dtype=torch.float64, device=device)
        levels = (torch.log1p(-u) / math.log1p(-psi)).floor().clamp_(0, max_level).long()
        # P(N = k) = Ψ(1−Ψ)^k for k < max_level; the capped level holds the whole tail (1−Ψ)^max_level.
        prob = psi * (1.0 - psi) ** levels.double()
        prob = torch.where(levels == max_level, torch.full_like(prob, (1.0 - psi) ** max_level), prob)
        # Four empirical distributions per row: first sample, all, even-indexed, odd-indexed.
        dists = torch.zeros(4, n_rows, n_states, dtype=torch.float64, device=device)
        for k in torch.unique(levels).tolist():
            rows = torch.nonzero(levels == k).squeeze(1)
            n = 2 ** (k + 1)
            samples = sampler(rows, n)  # (R, n)
            dists[0, rows] = _histogram(samples[:, :1], n_states)
            dists[1, rows] = _histogram(samples, n_states)
            dists[2, rows] = _histogram(samples[:, 0::2], n_states)
            dists[3, rows] = _histogram(samples[:, 1::2], n_states)
        sig = self.support_torch(dists, v.to(torch.float64).unsqueeze(0).expand(4, -1, -1))  # (4, N)
        delta = sig[1] - 0.5 * (sig[2] + sig[3])
        return sig[0] + delta / prob


def _histogram(samples: torch.Tensor, n_states: int) -> torch.Tensor:
    """Empirical distributions ``(R, S)`` of integer samples ``(R, n)``."""
    counts = torch.zeros(samples.shape[0], n_states, dtype=torch.float64, device=samples.device)
    counts.scatter_add_(1, samples, torch.ones(samples.shape, dtype=torch.float64, device=samples.device))
    return counts / samples.shape[1]


# ---------------------------------------------------------------------------------- the sets
class Contamination(KernelSet):
    """R-contamination ``{(1−δ)p + δq : q ∈ Δ}``: σ = (1−δ)·p·v + δ·min_s v(s) (min over *all* states)."""

    name = "contamination"
    radius_range = (0.0, 1.0)

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        d = self.radius
        return (1.0 - d) * (p * v).sum(-1) + d * v.min(-1).values

    def estimate(self, v, sampler, generator=None, psi=0.6, max_level=20):  # type: ignore[override]
        """Direct unbiased estimate ``(1−δ)·v(s') + δ·min v`` from one sample ``s'`` per row."""
        rows = torch.arange(v.shape[0], device=v.device)
        s_next = sampler(rows, 1)[:, 0]
        v64 = v.to(torch.float64)
        return (1.0 - self.radius) * v64[rows, s_next] + self.radius * v64.min(-1).values


class TotalVariation(KernelSet):
    """Total variation ``{q ∈ Δ : ½‖q − p‖₁ ≤ δ}``.

    Primal closed form: take δ of probability mass from the highest-value states (in decreasing
    order of v) and put it on ``argmin v`` over all states.
    """

    name = "tv"
    radius_range = (0.0, 1.0)

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        vs, idx = v.sort(-1, descending=True)
        ps = p.gather(-1, idx)
        before = ps.cumsum(-1) - ps  # mass strictly above each state in the order
        removed = (self.radius - before).clamp(min=0.0).minimum(ps)
        return (p * v).sum(-1) - (removed * vs).sum(-1) + removed.sum(-1) * vs[:, -1]


class ChiSquare(KernelSet):
    """χ² ball ``{q ∈ Δ, q ≪ p : Σ_s (q_s − p_s)²/p_s ≤ δ}``.

    Dual (algorithms.md §6): σ = max_α E_p[min(v, α)] − √(δ·Var_p(min(v, α))). Between two sorted
    values of v the objective is a + bα − √δ·√Var(α) with Var quadratic in α, whose stationary
    point is closed-form (α* = m_L + σ_L/√(δ P_L − b), L = states below α). Every α gives a valid
    lower bound (weak duality), so the max over all breakpoints and clipped stationary points is
    exact.
    """

    name = "chi2"
    absolutely_continuous = True

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mean = (p * v).sum(-1, keepdim=True)
        w = v - mean  # centred for accuracy
        ws, idx = w.sort(-1)
        ps = p.gather(-1, idx)
        # Prefix statistics of L = {0..k}: mass P_L, mean m_L and squared deviations M2_L, by
        # Welford's update; the textbook E[x²] − E[x]² loses half the digits under a square root.
        p_low, m_l, m2_l = torch.empty_like(ps), torch.empty_like(ps), torch.empty_like(ps)
        mass = torch.zeros_like(ps[:, 0])
        mu, m2 = torch.zeros_like(mass), torch.zeros_like(mass)
        for k in range(ps.shape[1]):
            x, wt = ws[:, k], ps[:, k]
            new_mass = mass + wt
            dev = x - mu
            # the first state with mass sets the mean exactly (M2 stays exactly 0 for one state)
            mu = torch.where(mass > 0, mu + wt * dev / new_mass.clamp(min=1e-300), x)
            m2 = m2 + wt * dev * (x - mu)
            mass = new_mass
            p_low[:, k], m_l[:, k], m2_l[:, k] = mass, mu, m2
        b = ps.flip(-1).cumsum(-1).flip(-1) - ps  # mass strictly above position k (exactly 0 at the end)
        upper = torch.cat([ws[:, 1:], ws[:, -1:]], dim=-1)  # interval [ws_k, ws_{k+1}]
        # Stationary point in each interval (only where δ P_L > b and P_L > 0).
        gap = self.radius * p_low - b
        ok = (gap > 0) & (p_low > 0)
        sd_l = torch.sqrt((m2_l / p_low.clamp(min=1e-300)).clamp(min=0.0))
        alpha_star = torch.where(ok, m_l + sd_l / torch.sqrt(gap.clamp(min=1e-300)), ws)
        alpha_star = torch.minimum(torch.maximum(alpha_star, ws), upper)

        def objective(alpha: torch.Tensor) -> torch.Tensor:
            # E[min(w, α)] and its variance as a mixture of L (values w) and U (value α).
            centre = torch.where(p_low > 0, m_l, alpha)
            ex = p_low * centre + b * alpha
            var = m2_l.clamp(min=0.0) + p_low * b * (alpha - centre) ** 2
            return ex - math.sqrt(self.radius) * torch.sqrt(var)

        best = torch.maximum(objective(ws), objective(alpha_star)).max(-1).values
        return best + mean.squeeze(-1)


class KullbackLeibler(KernelSet):
    """KL ball ``{q ∈ Δ, q ≪ p : KL(q‖p) ≤ δ}``.

    Dual: σ = max_{λ≥0} h(λ), h(λ) = −λδ − λ·log E_p[exp(−v/λ)] (concave), evaluated with a
    shifted log-sum-exp. If δ ≥ −log p(argmin_{supp p} v) the optimum is at λ → 0 and σ is the
    minimum of v over the support of p (all mass on the best supported state). Otherwise h'(λ) = 0
    is solved by Newton's method in log λ, safeguarded by bisection on a bracket
    [1e-12·span, span/δ] (h' ≤ −δ + span/λ gives the upper end).
    """

    name = "kl"
    absolutely_continuous = True

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        d = self.radius
        supp = p > 0
        v_min = torch.where(supp, v, torch.inf).min(-1, keepdim=True).values
        w = torch.where(supp, v - v_min, 0.0)  # ≥ 0 on the support, 0 at the best supported state
        log_p = torch.where(supp, p.log(), -torch.inf)
        span = w.max(-1).values
        p_best = torch.where(supp & (w <= 1e-15 * span.unsqueeze(-1).clamp(min=1.0)), p, 0.0).sum(-1)
        interior = (d < -torch.log(p_best)) & (span > 0)
        mean_w = (p * w).sum(-1)
        var_w = (p * (w - mean_w.unsqueeze(-1)) ** 2).sum(-1)
        scale = span.clamp(min=1e-300)
        lo = torch.log(1e-12 * scale)
        hi = torch.log(scale / d)
        t = torch.log(torch.sqrt(var_w / (2 * d)).clamp(min=1e-300)).clamp(min=lo, max=hi)

        def h_and_derivs(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            lam = t.exp().unsqueeze(-1)
            logits = log_p - w / lam
            lse = torch.logsumexp(logits, -1, keepdim=True)
            q = torch.exp(logits - lse)
            eq = (q * w).sum(-1, keepdim=True)
            varq = (q * (w - eq) ** 2).sum(-1)
            lam, lse, eq = lam.squeeze(-1), lse.squeeze(-1), eq.squeeze(-1)
            h = -lam * d - lam * lse
            dh = -d - lse - eq / lam  # h'(λ)
            return h, dh, varq / (lam * lam)  # −dh'/dt = Var_q(w)/λ²

        for _ in range(100):
            _, dh, curv = h_and_derivs(t)
            lo = torch.where(dh > 0, t, lo)
            hi = torch.where(dh > 0, hi, t)
            newton = t + dh / curv.clamp(min=1e-300)
            bad = ~torch.isfinite(newton) | (newton < lo) | (newton > hi)
            t_new = torch.where(bad, 0.5 * (lo + hi), newton)
            step = (t_new - t).abs()
            t = t_new
            if not bool((step[interior] > 1e-14 * (1 + t[interior].abs())).any()):
                break
        h, _, _ = h_and_derivs(t)
        # λ → 0 gives min over the support; every λ is a valid lower bound, so take the max.
        out = torch.where(interior, torch.maximum(h, torch.zeros_like(h)), torch.zeros_like(h))
        return out + v_min.squeeze(-1)


class Wasserstein(KernelSet):
    """Wasserstein-l ball ``{q ∈ Δ : W_l(q, p) ≤ δ}`` with ground metric ``d`` (default |i − j|).

    Dual: σ = max_{λ≥0} D(λ), D(λ) = −λδ^l + Σ_i p_i min_j (v_j + λ d_ij^l), a concave piecewise-
    linear function. It is maximised exactly by cutting planes (Kelley's method in 1-D: intersect
    the tangents at a point of positive and of negative slope) which ends at a kink whose
    super-differential contains 0, certified by matching the model's upper bound.
    """

    name = "wasserstein"

    def __init__(self, radius: float, metric: np.ndarray | None = None, order: float = 1.0) -> None:
        super().__init__(radius)
        if not order >= 1.0:
            raise ConfigError(f"Wasserstein order l={order} must be ≥ 1")
        self.order = float(order)
        self.metric = None
        if metric is not None:
            m = np.asarray(metric, dtype=np.float64)
            off = ~np.eye(m.shape[0], dtype=bool) if m.ndim == 2 else None
            if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.all(np.isfinite(m)) or np.any(np.diag(m) != 0) \
                    or np.any(m[off] <= 0):
                raise ConfigError(
                    "metric must be a square (S, S) finite matrix with zero diagonal and positive off-diagonal "
                    f"entries; got shape {m.shape}"
                )
            self.metric = m
        self._cost_cache: dict[tuple[int, str], torch.Tensor] = {}

    def cost(self, n_states: int, device: torch.device) -> torch.Tensor:
        """The transport cost matrix ``d^l`` (S, S) in float64 on ``device``."""
        key = (n_states, str(device))
        if key not in self._cost_cache:
            if self.metric is None:
                i = np.arange(n_states, dtype=np.float64)
                m = np.abs(i[:, None] - i[None, :])
            elif self.metric.shape[0] != n_states:
                raise ModelError(f"Wasserstein metric is {self.metric.shape} but the model has {n_states} states")
            else:
                m = self.metric
            self._cost_cache[key] = torch.as_tensor(m**self.order, dtype=torch.float64, device=device)
        return self._cost_cache[key]

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n_states = p.shape[-1]
        cost = self.cost(n_states, p.device)
        # (chunk, S, S) intermediates: keep each chunk near 4M entries.
        chunk = max(1, 4_000_000 // (n_states * n_states))
        return torch.cat([self._solve(p[i:i + chunk], v[i:i + chunk], cost) for i in range(0, p.shape[0], chunk)])

    def _solve(self, p: torch.Tensor, v: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        budget = self.radius**self.order
        scale = 1.0 + v.abs().amax(-1)
        tol = 1e-13 * scale

        def evaluate(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            m = v.unsqueeze(1) + lam[:, None, None] * cost  # (N, i, j)
            g = m.min(-1, keepdim=True).values
            tie = m <= g + tol[:, None, None]
            right = torch.where(tie, cost, torch.inf).min(-1).values
            left = torch.where(tie, cost, -torch.inf).max(-1).values
            value = -lam * budget + (p * g.squeeze(-1)).sum(-1)
            return value, -budget + (p * right).sum(-1), -budget + (p * left).sum(-1)

        zeros = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
        lam_a = zeros
        d_a, s_a, _ = evaluate(lam_a)
        diff = (v.unsqueeze(-1) - v.unsqueeze(-2)) / torch.where(cost > 0, cost, torch.inf)
        lam_b = 2.0 * diff.flatten(1).amax(-1).clamp(min=0.0) + 1.0  # beyond every crossing: stay put
        d_b, _, s_b = evaluate(lam_b)
        best = torch.maximum(d_a, d_b)
        active = s_a > 0  # otherwise λ = 0 is optimal: σ = min v (the vertex is reachable)
        for _ in range(500):
            if not bool(active.any()):
                break
            denom = (s_a - s_b).clamp(min=1e-300)
            lam_c = ((d_b - d_a + s_a * lam_a - s_b * lam_b) / denom).clamp(min=lam_a, max=lam_b)
            d_c, right_c, left_c = evaluate(lam_c)
            best = torch.where(active, torch.maximum(best, d_c), best)
            upper = d_a + s_a * (lam_c - lam_a)
            done = ((right_c <= 0) & (left_c >= 0)) | (d_c >= upper - 10 * tol)
            go_right = active & ~done & (right_c > 0)
            go_left = active & ~done & ~(right_c > 0)
            lam_a = torch.where(go_right, lam_c, lam_a)
            d_a = torch.where(go_right, d_c, d_a)
            s_a = torch.where(go_right, right_c, s_a)
            lam_b = torch.where(go_left, lam_c, lam_b)
            d_b = torch.where(go_left, d_c, d_b)
            s_b = torch.where(go_left, left_c, s_b)
            active = active & ~done
        return best


_SETS: dict[str, type[KernelSet]] = {
    cls.name: cls for cls in (Contamination, TotalVariation, ChiSquare, KullbackLeibler, Wasserstein)
}


def kernel_set_names() -> list[str]:
    """The valid names for :func:`make_kernel_set`."""
    return sorted(_SETS)


def make_kernel_set(name: str, radius: float, **kwargs: object) -> KernelSet:
    """Build an uncertainty set by name.

    Args:
        name: one of ``contamination``, ``tv``, ``chi2``, ``kl``, ``wasserstein``.
        radius: δ; ``[0, 1]`` for contamination and tv, ``[0, ∞)`` otherwise.
        **kwargs: ``metric`` ((S, S) matrix) and ``order`` (l ≥ 1) for ``wasserstein``.

    Raises:
        ConfigError: unknown name, radius out of range, or options the set does not take.
    """
    if name not in _SETS:
        raise ConfigError(f"unknown uncertainty set {name!r}; valid: {choices(_SETS)}")
    if kwargs and name != "wasserstein":
        raise ConfigError(f"uncertainty set {name!r} takes no options, got {choices(kwargs)}")
    return _SETS[name](radius, **kwargs)  # type: ignore[arg-type]
