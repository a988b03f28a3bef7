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

How the estimator is computed (exactly the same numbers as evaluating σ on the four empirical
distributions with :meth:`KernelSet.support_torch`, only faster; ``tests/unit/test_kernel_sets.py``
checks each piece against it):

* Level 0 (a fraction Ψ of the rows) has two samples x, y: the first sample and the halves are point
  masses and the whole is ``½δ_x + ½δ_y``, each with a closed form per set
  (:meth:`KernelSet.support_point`, :meth:`KernelSet.support_pair`).
* Higher levels draw their ``2^{N+1}`` samples per level and turn them into count vectors over the S
  states with one ``bincount``; the three empirical distributions of a row share its ``v``, so
  :meth:`KernelSet.support_shared` does the ``v``-only work (compression to the charged states,
  sorting) once per row, and sends distributions on at most two values to closed forms (χ² any
  weights, KL weights that are multiples of 1/64) before the general solvers.
* The general solvers drop certified rows from the batch as they converge, and reduce over short
  axes by matrix–vector products or over a leading axis (PyTorch's reductions over a short last
  axis are an order of magnitude slower on CPU).
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
    estimator than MLMC exists, :meth:`estimate`. For speed they may override the MLMC building
    blocks ``_support_shared``, ``_support_point`` and ``_support_pair`` (defaults: ``_support``).
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

    # ------------------------------------------------------------------ shared-value batches
    def support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Exact support of ``K`` distributions per row that share the row's values (MLMC fast path).

        Equal to ``support_torch(p, v.expand_as(p))``, but work that depends only on ``v`` (sorting,
        compression to the charged states, per-row constants) is done once per row, and
        distributions with a closed form (point masses, two-point distributions) skip the
        iterative solvers.

        Args:
            p: ``(K, N, S)`` distributions (no validation).
            v: ``(N, S)`` values.

        Returns:
            ``(K, N)`` float64.
        """
        p64, v64 = p.to(torch.float64), v.to(torch.float64)
        if self.radius == 0.0 or p64.numel() == 0:
            return (p64 * v64).sum(-1)
        return self._support_shared(p64, v64)

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.support_torch(p, v.unsqueeze(0).expand_as(p))

    def support_point(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Exact support of the point masses ``δ_x``: ``v`` (N, S), ``x`` (N,) int64 → (N,) float64."""
        v64 = v.to(torch.float64)
        if self.radius == 0.0 or self.absolutely_continuous:  # q ≪ δ_x leaves only δ_x itself
            return v64.gather(1, x.unsqueeze(1)).squeeze(1)
        return self._support_point(v64, x)

    def _support_point(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        one_hot = torch.zeros_like(v).scatter_(1, x.unsqueeze(1), 1.0)
        return self.support_torch(one_hot, v)

    def support_pair(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Exact support of ``½δ_x + ½δ_y`` (the empirical distribution of two samples; ``x = y``
        allowed): ``v`` (N, S), ``x``, ``y`` (N,) int64 → (N,) float64."""
        v64 = v.to(torch.float64)
        vx, vy = v64.gather(1, x.unsqueeze(1)).squeeze(1), v64.gather(1, y.unsqueeze(1)).squeeze(1)
        if self.radius == 0.0:
            return 0.5 * (vx + vy)
        return self._support_pair(v64, x, y, torch.minimum(vx, vy), torch.maximum(vx, vy))

    def _support_pair(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor,
                      hi: torch.Tensor) -> torch.Tensor:
        """Default: the shared-value path on the two-sample distribution (``lo``/``hi``: min/max of v_x, v_y)."""
        p = torch.zeros_like(v)
        p.scatter_add_(1, x.unsqueeze(1), torch.full_like(lo, 0.5).unsqueeze(1))
        p.scatter_add_(1, y.unsqueeze(1), torch.full_like(lo, 0.5).unsqueeze(1))
        return self._support_shared(p.unsqueeze(0), v)[0]

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
        v64 = v.to(torch.float64)
        levels, prob = mlmc_levels(n_rows, psi, max_level, generator, v.device)
        out = torch.empty(n_rows, dtype=torch.float64, device=v.device)
        # Level 0 (a fraction Ψ of the rows): two samples x, y; the halves are δ_x, δ_y and
        # δ_x is also the first sample, so only point masses and one two-point distribution.
        rows = (levels == 0).nonzero().squeeze(1)
        if rows.numel():
            xy = sampler(rows, 2).to(v.device)
            v0 = v64.index_select(0, rows)
            sig_x, sig_y = self.support_point(v0, xy[:, 0]), self.support_point(v0, xy[:, 1])
            sig_all = self.support_pair(v0, xy[:, 0], xy[:, 1])
            out[rows] = sig_x + (sig_all - 0.5 * (sig_x + sig_y)) / prob.index_select(0, rows)
        rows = (levels > 0).nonzero().squeeze(1)
        if rows.numel():
            v1, levels1 = v64.index_select(0, rows), levels.index_select(0, rows)
            first, halves = mlmc_counts(levels1, lambda r, n: sampler(rows[r], n), n_states)
            # Empirical distributions of all, even-indexed and odd-indexed samples (2^{N+1}, 2^N
            # and 2^N of them): counts times a power of two, so exact. A row's three share its v.
            inv_half = torch.pow(0.5, levels1.to(torch.float64)).unsqueeze(1)
            dists = torch.empty(3, rows.numel(), n_states, dtype=torch.float64, device=v.device)
            torch.mul(halves[:, 0], inv_half, out=dists[1])
            torch.mul(halves[:, 1], inv_half, out=dists[2])
            torch.add(dists[1], dists[2], out=dists[0]).mul_(0.5)
            sig = self.support_shared(dists, v1)  # (3, R): all, even, odd
            out[rows] = self.support_point(v1, first) + (sig[0] - 0.5 * (sig[1] + sig[2])) / prob.index_select(0, rows)
        return out


def mlmc_levels(n_rows: int, psi: float, max_level: int, generator: torch.Generator | None,
                device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """MLMC levels ``N ~ Geom(Ψ)`` capped at ``max_level`` and their probabilities, each ``(n_rows,)``.

    ``P(N = k) = Ψ(1−Ψ)^k`` for ``k < max_level``; the capped level holds the whole tail ``(1−Ψ)^max_level``.
    """
    u = torch.rand(n_rows, generator=generator, dtype=torch.float64, device=device)
    levels = (torch.log1p(-u) / math.log1p(-psi)).floor_().clamp_(0, max_level).long()
    table = [psi * (1.0 - psi) ** k for k in range(max_level)] + [(1.0 - psi) ** max_level]
    return levels, torch.tensor(table, dtype=torch.float64, device=device).index_select(0, levels)


def mlmc_counts(levels: torch.Tensor, sampler: Sampler, n_states: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``2^{N+1}`` samples per row and return ``(first sample (R,), counts (R, 2, S))``.

    ``counts[:, 0]`` / ``counts[:, 1]`` count the even- / odd-indexed samples of each row (float64).
    One sampler call per level present; the counts come from a single ``bincount`` over all samples.
    """
    n_rows, device = levels.shape[0], levels.device
    first = torch.zeros(n_rows, dtype=torch.int64, device=device)
    bins = []
    for k in torch.bincount(levels).nonzero().squeeze(1).tolist():
        rows = (levels == k).nonzero().squeeze(1)
        n = 2 ** (k + 1)
        samples = sampler(rows, n).to(device)  # (R, n)
        first[rows] = samples[:, 0]
        # bin of a sample: (row, parity of its index, state)
        parity = torch.arange(n, device=device).remainder_(2).mul_(n_states)
        bins.append((rows.mul(2 * n_states).unsqueeze(1) + parity + samples).reshape(-1))
    counts = torch.bincount(torch.cat(bins), minlength=n_rows * 2 * n_states)
    return first, counts.view(n_rows, 2, n_states).to(torch.float64)


def _charged_columns(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the columns that any of its ``K`` distributions ``p`` (K, N, S) charges.

    Returns ``(idx, valid)``, both ``(N, k)`` with ``k`` the largest number of charged columns
    over rows: the charged columns in increasing order, then padding (``valid`` False, index 0).
    A cumulative count places each charged column (no sorting).
    """
    charged = p[0] > 0
    for i in range(1, p.shape[0]):
        charged |= p[i] > 0
    position = charged.cumsum(-1)  # 1-based slot of each charged column
    n_states, count = p.shape[-1], position[:, -1]
    k = max(int(count.max()), 1)
    slot = torch.where(charged, position - 1, n_states)  # uncharged columns go to a spare slot
    idx = torch.zeros(p.shape[1], n_states + 1, dtype=torch.int64, device=p.device)
    idx.scatter_(1, slot, torch.arange(n_states, device=p.device).expand_as(slot))
    return idx[:, :k], torch.arange(k, device=p.device) < count.unsqueeze(1)


def _gather_columns(p: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``p`` (K, N, S), ``v`` (N, S) restricted to the columns ``idx`` (N, k): flat ``(K·N, k)`` each,
    with zero mass on the padding."""
    K, N, k = p.shape[0], *idx.shape
    ps = p.gather(-1, idx.expand(K, N, k)).mul_(valid).reshape(K * N, k)
    vs = v.gather(-1, idx).expand(K, N, k).reshape(K * N, k)
    return ps, vs


def _target_major(table_t: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """``out[j, m, i] = table_t[j, src[m, i]]`` for a square ``table_t`` (S, S): (S, M, k), built one
    target row at a time (a gather along the last axis of a small table is slow in PyTorch)."""
    flat = src.reshape(-1)
    out = torch.empty(table_t.shape[0], flat.numel(), dtype=table_t.dtype, device=table_t.device)
    for j in range(table_t.shape[0]):
        torch.index_select(table_t[j], 0, flat, out=out[j])
    return out.view(table_t.shape[0], *src.shape)


def _rowsum(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(-1)`` for a 2-D tensor as a matrix–vector product (reductions over a short last
    axis are an order of magnitude slower on CPU)."""
    return x @ torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)


def _split_two_point(
    ps: torch.Tensor,
    vs: torch.Tensor,
    two_point: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    general: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Support of rows ``ps`` (M, k) with values ``vs`` for an absolutely continuous set.

    With q ≪ p, a distribution charging at most two values ``lo < hi`` has a 1-D problem:
    ``two_point(lo, hi, w)`` (``w`` = mass on ``hi``) returns the closed-form support and a mask
    of the rows it solved (point masses: ``w = 1``, ``hi = lo``); ``general`` takes the rest.
    """
    charged = ps > 0
    lo = torch.where(charged, vs, torch.inf).amin(-1)
    hi = torch.where(charged, vs, -torch.inf).amax(-1)
    w = _rowsum(torch.where(vs == hi.unsqueeze(-1), ps, 0.0))
    out, solved = two_point(lo, hi, w)
    rest = (~(solved & (charged.sum(-1) <= 2))).nonzero().squeeze(1)
    if rest.numel():
        out[rest] = general(ps.index_select(0, rest), vs.index_select(0, rest))
    return out


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
        s_next = sampler(rows, 1).to(v.device)
        v64 = v.to(torch.float64)
        return (1.0 - self.radius) * v64.gather(1, s_next).squeeze(1) + self.radius * v64.amin(-1)


class TotalVariation(KernelSet):
    """Total variation ``{q ∈ Δ : ½‖q − p‖₁ ≤ δ}``.

    Primal closed form: take δ of probability mass from the highest-value states (in decreasing
    order of v) and put it on ``argmin v`` over all states.
    """

    name = "tv"
    radius_range = (0.0, 1.0)

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        vs, idx = v.sort(-1, descending=True)
        return self._move_mass(p.gather(-1, idx), vs, vs[:, -1])

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # only the charged states give mass away: sort them once per row (padding last)
        idx, valid = _charged_columns(p)
        order = v.gather(-1, idx).masked_fill_(~valid, -torch.inf).sort(-1, descending=True).indices
        ps, vs = _gather_columns(p, v, idx.gather(-1, order), valid.gather(-1, order))
        v_min = v.amin(-1).expand(p.shape[0], -1).reshape(-1)
        return self._move_mass(ps, vs, v_min).view(p.shape[:2])

    def _support_point(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.radius) * v.gather(1, x.unsqueeze(1)).squeeze(1) + self.radius * v.amin(-1)

    def _support_pair(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor,
                      hi: torch.Tensor) -> torch.Tensor:
        # remove δ from hi (it holds ½), then any excess from lo; all of it goes to min v
        from_hi, from_lo = min(self.radius, 0.5), max(self.radius - 0.5, 0.0)
        return (0.5 - from_lo) * lo + (0.5 - from_hi) * hi + self.radius * v.amin(-1)

    def _move_mass(self, ps: torch.Tensor, vs: torch.Tensor, v_min: torch.Tensor) -> torch.Tensor:
        """``ps`` in decreasing order of ``vs`` (M, k): remove δ from the top, add it at ``v_min`` (M,)."""
        above = ps.cumsum(-1).sub_(ps)  # mass strictly above each state in the order
        removed = torch.minimum((self.radius - above).clamp_(min=0.0), ps)
        return _rowsum((ps - removed).mul_(vs)) + _rowsum(removed) * v_min


class ChiSquare(KernelSet):
    """χ² ball ``{q ∈ Δ, q ≪ p : Σ_s (q_s − p_s)²/p_s ≤ δ}``.

    Dual (algorithms.md §6): σ = max_α E_p[min(v, α)] − √(δ·Var_p(min(v, α))). Between two sorted
    values of v the objective is a + bα − √δ·√Var(α) with Var quadratic in α, whose stationary
    point is closed-form (α* = m_L + σ_L/√(δ P_L − b), L = states below α). Every α gives a valid
    lower bound (weak duality), so the max over all breakpoints and clipped stationary points is
    exact. Two-point p = (1−w, w) on values lo < hi: q keeps ``max(w − √(δw(1−w)), 0)`` on hi.
    """

    name = "chi2"
    absolutely_continuous = True

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        vs, idx = v.sort(-1)
        return self._support_sorted(p.gather(-1, idx), vs)

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ps, vs = _gather_columns(p, v, *_charged_columns(p))
        return _split_two_point(ps, vs, self._two_point, self._support).view(p.shape[:2])

    def _support_pair(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor,
                      hi: torch.Tensor) -> torch.Tensor:
        return self._two_point(lo, hi, torch.full_like(lo, 0.5))[0]

    def _two_point(self, lo: torch.Tensor, hi: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = w - torch.minimum(torch.sqrt((self.radius * w * (1.0 - w)).clamp_(min=0.0)), w)
        return lo + keep * (hi - lo), torch.ones_like(w, dtype=torch.bool)

    def _support_sorted(self, ps: torch.Tensor, vs: torch.Tensor) -> torch.Tensor:
        """The dual on rows ``ps`` (M, k) whose values ``vs`` are sorted ascending."""
        mean = _rowsum(ps * vs).unsqueeze(-1)
        ws = vs - mean  # centred for accuracy
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

    Dual: σ = max_{λ≥0} h(λ), h(λ) = −λδ − λ·log E_p[exp(−v/λ)] (concave). If δ ≥ −log p(argmin_{supp
    p} v) the optimum is at λ → 0 and σ is the minimum of v over the support of p (all mass on the
    best supported state). Otherwise, with β = 1/λ and w = v − min v ≥ 0 (so E_p[exp(−βw)] never
    overflows), h'(λ) = 0 ⟺ KL(q_β‖p) = δ for the tilted q_β ∝ p·exp(−βw); it is solved by
    Newton's method on log KL(q_β‖p) = log δ in log β, safeguarded by bisection (``rtsafe``: a
    bracketing step whenever Newton leaves the bracket or does not halve the step two iterations
    back). Every iterate certifies itself: h(β) ≤ σ (weak duality) and the feasible
    q' = (δ/κ)·q_β + (1 − δ/κ)·p (κ = KL(q_β‖p) > δ; q_β itself when κ ≤ δ) gives σ ≤ E_q'[v].
    A row stops when the two bounds are within 1e-11·(1 + span v); the lower bound is returned.
    A two-point p = (1 − w, w) whose w is a multiple of 1/64 (MLMC's small empirical distributions)
    leaves a tabulated mass q(w) on the higher value.
    """

    name = "kl"
    absolutely_continuous = True

    #: two-point distributions whose weights are multiples of 2^-TABLE_BITS use a table
    TABLE_BITS: ClassVar[int] = 6

    def __init__(self, radius: float) -> None:
        super().__init__(radius)
        n = 2**self.TABLE_BITS
        self._keep = torch.tensor([_kl_two_point_keep(self.radius, j / n) for j in range(n + 1)], dtype=torch.float64)

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        d = self.radius
        supp = p > 0
        v_min = torch.where(supp, v, torch.inf).amin(-1)
        w = torch.where(supp, v - v_min.unsqueeze(-1), 0.0)  # ≥ 0 on the support, 0 at the best supported state
        span = w.amax(-1)
        p_best = _rowsum(torch.where(supp & (w <= 1e-15 * span.unsqueeze(-1).clamp(min=1.0)), p, 0.0))
        interior = ((d < -torch.log(p_best)) & (span > 0)).nonzero().squeeze(1)
        if interior.numel():
            v_min[interior] += _kl_dual(*(x.index_select(0, interior) for x in (p, w, span)), d)
        return v_min

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ps, vs = _gather_columns(p, v, *_charged_columns(p))
        return _split_two_point(ps, vs, self._two_point, self._support).view(p.shape[:2])

    def _support_pair(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor,
                      hi: torch.Tensor) -> torch.Tensor:
        return lo + float(self._keep[2 ** (self.TABLE_BITS - 1)]) * (hi - lo)

    def _two_point(self, lo: torch.Tensor, hi: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scaled = w * 2**self.TABLE_BITS  # exact: a power of two
        j = scaled.round()
        keep = self._keep.to(w.device).index_select(0, j.long())
        return torch.addcmul(lo, keep, hi - lo), (scaled == j) | (hi == lo)


def _kl_two_point_keep(delta: float, w: float) -> float:
    """The mass ``q`` that the worst case in a KL ball of radius δ around ``(1−w, w)`` leaves on the
    higher of two values: the smallest ``q ∈ [0, w]`` with ``KL((1−q, q)‖(1−w, w)) ≤ δ`` (bisection
    to the last bit; the divergence decreases on [0, w] from −log(1−w) to 0)."""
    if w >= 1.0 or w <= 0.0 or -math.log1p(-w) <= delta:
        return 0.0 if 0.0 < w < 1.0 else w

    def kl(q: float) -> float:
        return (1 - q) * math.log((1 - q) / (1 - w)) + (q * math.log(q / w) if q > 0 else 0.0)

    lo, hi = 0.0, w  # kl(lo) > δ ≥ kl(hi)
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            return hi
        lo, hi = (mid, hi) if kl(mid) > delta else (lo, mid)


def _kl_dual(p: torch.Tensor, w: torch.Tensor, span: torch.Tensor, delta: float, fixed: int = 5,
             max_iter: int = 300) -> torch.Tensor:
    """``max_β h(β)`` for rows ``p``, ``w ≥ 0`` (M, k) with ``min_{supp p} w = 0`` and an interior optimum.

    See :class:`KullbackLeibler`. ``fixed`` iterations run on every row before the first
    convergence check; after that, converged rows leave the batch.
    """
    out = torch.empty_like(span)
    mean_p = _rowsum(p * w)
    var_p = _rowsum(p * (w - mean_p.unsqueeze(-1)) ** 2)
    # KL(q_β‖p) ≤ β·E_p w ≤ β·span, so β = δ/span is feasible; past β = 1e12/span the bound gap
    # λ(δ − KL) is below 1e-12·span·δ (the safeguard's bracket in s = log β).
    lo = torch.log(delta / span)
    hi = torch.log(1e12 / span).clamp(min=lo)
    s = torch.log(torch.sqrt(2 * delta / var_p.clamp(min=1e-300))).clamp(min=lo, max=hi)  # KL ≈ β²Var/2
    lower = torch.zeros_like(span)  # λ → 0: min over supp p of w
    upper = mean_p.clone()  # q = p
    tol = 1e-11 * (1.0 + span)
    dx = dx_old = hi - lo
    w2 = w * w
    rows = torch.arange(span.shape[0], device=span.device)
    state = [p, w, w2, mean_p, lo, hi, s, lower, upper, tol, dx, dx_old, rows]
    for it in range(max_iter):
        p, w, w2, mean_p, lo, hi, s, lower, upper, tol, dx, dx_old, rows = state
        beta = s.exp()
        e = torch.exp(w * -beta.unsqueeze(-1)).mul_(p)
        z = _rowsum(e)
        m1 = _rowsum(e * w) / z
        m2 = _rowsum(e * w2) / z
        log_z = z.log()
        kl = -beta * m1 - log_z
        lower = torch.maximum(lower, -(delta + log_z) / beta)
        theta = torch.where(kl > delta, 1.0 - delta / kl, 0.0)
        upper = torch.minimum(upper, m1 + theta * (mean_p - m1))
        right = kl > delta
        lo = torch.where(right, lo, s)
        hi = torch.where(right, s, hi)
        step = torch.log(kl / delta) * kl / (beta * beta * (m2 - m1 * m1))  # g/g' for g = log(KL/δ)
        newton = s - step
        bisect = ~((newton > lo) & (newton < hi) & (step.abs() <= 0.5 * dx_old.abs()))
        dx_old, dx = dx, torch.where(bisect, 0.5 * (hi - lo), step)
        s = torch.where(bisect, 0.5 * (lo + hi), newton)
        state = [p, w, w2, mean_p, lo, hi, s, lower, upper, tol, dx, dx_old, rows]
        if it + 1 >= fixed:
            done = upper - lower <= tol
            if bool(done.all()):
                break
            if bool(done.any()):
                out[rows[done]] = lower[done]
                keep = (~done).nonzero().squeeze(1)
                state = [x.index_select(0, keep) for x in state]
    p, w, w2, mean_p, lo, hi, s, lower, upper, tol, dx, dx_old, rows = state
    out[rows] = lower
    return out


class Wasserstein(KernelSet):
    """Wasserstein-l ball ``{q ∈ Δ : W_l(q, p) ≤ δ}`` with ground metric ``d`` (default |i − j|).

    Dual: σ = max_{λ≥0} D(λ), D(λ) = −λδ^l + Σ_i p_i min_j (v_j + λ d_ij^l), a concave piecewise-
    linear function. It is maximised exactly by cutting planes (Kelley's method in 1-D: intersect
    the tangents at a point of positive and of negative slope) which ends at a kink whose
    super-differential contains 0, certified by matching the model's upper bound. Only states
    charged by p send mass. Before Kelley, the last kink λ_b (past which no source moves) is
    computed in closed form; when D's left slope there is ≥ 0 it is the optimum (the usual case
    for small radii: the budget is spent on the single best move). Point masses have a tabulated
    closed form (an optimal q charges one state within the budget or two straddling it).
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
        self._point_cache: dict[tuple[int, str], tuple[torch.Tensor, ...]] = {}

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
        return self._support_shared(p.unsqueeze(0), v)[0]

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        K, N, S = p.shape
        idx, valid = _charged_columns(p)  # only charged states send mass: (N, k) sources
        ps = p.gather(-1, idx.expand(K, N, idx.shape[1])).mul_(valid).reshape(K * N, -1)
        base = torch.arange(N, device=p.device).repeat(K)  # the row of v of each flat row
        out = torch.empty(K * N, dtype=torch.float64, device=p.device)
        point = ps.amax(-1) == 1.0
        rows = point.nonzero().squeeze(1)
        if rows.numel():
            b = base.index_select(0, rows)
            x = idx.index_select(0, b).gather(-1, ps.index_select(0, rows).argmax(-1, keepdim=True)).squeeze(-1)
            out[rows] = self._support_point(v.index_select(0, b), x)
        rows = (~point).nonzero().squeeze(1)
        if rows.numel():
            b = base.index_select(0, rows)
            out[rows] = self._solve_chunked(ps.index_select(0, rows), v.index_select(0, b), idx.index_select(0, b))
        return out.view(K, N)

    def _support_pair(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor,
                      hi: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(lo)
        same = x == y
        rows = same.nonzero().squeeze(1)
        if rows.numel():
            out[rows] = self._support_point(v.index_select(0, rows), x.index_select(0, rows))
        rows = (~same).nonzero().squeeze(1)
        if rows.numel():
            src = torch.stack([x, y], 1).index_select(0, rows)
            out[rows] = self._solve_chunked(torch.full(src.shape, 0.5, dtype=v.dtype, device=v.device),
                                            v.index_select(0, rows), src)
        return out

    def _solve_chunked(self, p: torch.Tensor, v: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """:meth:`_solve` in chunks whose ``(S, chunk, k)`` intermediates hold about 4M entries."""
        chunk = max(1, 4_000_000 // (src.shape[1] * v.shape[1]))
        if p.shape[0] <= chunk:
            return self._solve(p, v, src)
        return torch.cat([self._solve(p[i:i + chunk], v[i:i + chunk], src[i:i + chunk])
                          for i in range(0, p.shape[0], chunk)])

    def _support_point(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Point mass δ_x: the LP over q has two constraints, so an optimal q charges one state j
        with d(x, j)^l ≤ δ^l, or two states j, k with d(x, j)^l ≤ δ^l < d(x, k)^l spending the whole
        budget. The candidates (j, k, weight on k) of each x are tabulated once per (S, device)."""
        S = v.shape[1]
        if S > 32:  # the table grows like S²
            return super()._support_point(v, x)
        key = (S, str(v.device))
        if key not in self._point_cache:
            c = self.cost(S, v.device).cpu().numpy()
            budget = self.radius**self.order
            tables = []
            for s in range(S):
                near = [j for j in range(S) if c[s, j] <= budget]
                far = [j for j in range(S) if c[s, j] > budget]
                tables.append([(j, j, 0.0) for j in near]
                              + [(j, k, (budget - c[s, j]) / (c[s, k] - c[s, j])) for j in near for k in far])
            width = max(len(t) for t in tables)
            tables = [t + [t[0]] * (width - len(t)) for t in tables]  # pad with a repeat
            self._point_cache[key] = (
                torch.tensor([[j for j, _, _ in t] for t in tables], device=v.device),
                torch.tensor([[k for _, k, _ in t] for t in tables], device=v.device),
                torch.tensor([[w for _, _, w in t] for t in tables], dtype=torch.float64, device=v.device),
            )
        j, k, weight = (t.index_select(0, x) for t in self._point_cache[key])  # (N, width) each
        return torch.lerp(v.gather(1, j), v.gather(1, k), weight).amin(-1)

    def _solve(self, p: torch.Tensor, v: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """Kelley's method on rows: ``p`` (M, k) masses of the sources ``src`` (M, k), values ``v`` (M, S).

        Intermediates are target-major, ``(S, M, k)``: the minimum over targets is then a
        reduction over the leading axis (several times faster on CPU than over a short last one).
        Rows leave the batch once certified (in groups, when a quarter of them are).
        """
        budget = self.radius**self.order
        n_states = v.shape[1]
        metric = self.cost(n_states, p.device)
        # cost[j, m, i] = d(src[m, i], j)^l and inv_cost its inverse (0 for j = src: staying is free)
        cost = _target_major(metric.t(), src)
        inv_cost = _target_major(torch.where(metric > 0, 1.0 / metric, 0.0).t(), src)
        out = torch.empty(p.shape[0], dtype=p.dtype, device=p.device)
        v_src = v.gather(1, src)
        v_t = v.t().contiguous()  # (S, M)

        def evaluate(lam: torch.Tensor, p: torch.Tensor, v_t: torch.Tensor, cost: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
            m = torch.addcmul(v_t.unsqueeze(-1), cost, lam.view(1, -1, 1))
            g = m.amin(0)  # g_i(λ) = min_j v_j + λ·d(i, j)^l
            # d(i, j*)^l of a minimiser j* is a supergradient of g_i at λ (the cheapest one: the right derivative)
            slope = cost.masked_fill(m != g, torch.inf).amin(0)
            return -lam * budget + _rowsum(p * g), -budget + _rowsum(p * slope)

        # The last crossing: past λ_b = max over sources i, targets j of (v_i − v_j)/d_ij^l every
        # source keeps its mass and D(λ) = p·v_src − λδ^l. If the left derivative there,
        # −δ^l + Σ_i p_i·max{d_ij^l : (i, j) crosses at λ_b}, is ≥ 0, λ_b is optimal (moving
        # δ^l/d_ij^l of i's mass to j attains D(λ_b)): the common case for small radii. Otherwise
        # (λ_b, D(λ_b)) with that slope is a tight second cutting plane.
        rate = (v_t.unsqueeze(-1) - v_src).mul_(inv_cost)  # value change per unit cost of moving i → j
        del inv_cost
        best_rate = rate.amin(0).masked_fill_(p == 0, 0.0)  # (M, k); 0 = keep the mass
        lam_b = -best_rate.amin(-1)
        crossing = cost.masked_fill(rate != -lam_b.view(1, -1, 1), 0.0).amax(0)
        d_b = _rowsum(p * v_src) - lam_b * budget
        s_b = _rowsum(p * crossing) - budget
        done = s_b >= 0
        rows = torch.arange(p.shape[0], device=p.device)
        out[done] = d_b[done]
        keep = (~done).nonzero().squeeze(1)
        p, lam_b, d_b, s_b, rows = (x.index_select(0, keep) for x in (p, lam_b, d_b, s_b, rows))
        v_t, cost = v_t.index_select(1, keep), cost.index_select(1, keep)
        tol = 1e-13 * (1.0 + v_t.abs().amax(0))
        lam_a = torch.zeros_like(tol)
        d_a, s_a = evaluate(lam_a, p, v_t, cost)
        best = torch.maximum(d_a, d_b)
        done = s_a <= 0  # λ = 0 is optimal: σ = min v (the vertex is reachable)
        state = [p, tol, lam_a, d_a, s_a, lam_b, d_b, s_b, best, rows, done]
        for _ in range(500):
            n_done = int(done.sum())
            if n_done == rows.numel():
                break
            if 4 * n_done >= rows.numel():  # drop certified rows when it pays
                out[rows[done]] = best[done]
                keep = (~done).nonzero().squeeze(1)
                state = [x.index_select(0, keep) for x in state]
                v_t, cost = v_t.index_select(1, keep), cost.index_select(1, keep)
            p, tol, lam_a, d_a, s_a, lam_b, d_b, s_b, best, rows, done = state
            lam_c = ((d_b - d_a + s_a * lam_a - s_b * lam_b) / (s_a - s_b)).clamp(min=lam_a, max=lam_b)
            d_c, s_c = evaluate(lam_c, p, v_t, cost)
            live = ~done  # certified rows keep their state
            best = torch.where(live, torch.maximum(best, d_c), best)
            upper = d_a + s_a * (lam_c - lam_a)  # the cutting-plane model's maximum
            done = done | (d_c >= upper - 10 * tol) | (s_c == 0)
            right = live & (s_c > 0)
            left = live & ~(s_c > 0)
            lam_a, d_a, s_a = torch.where(right, lam_c, lam_a), torch.where(right, d_c, d_a), torch.where(right, s_c, s_a)
            lam_b, d_b, s_b = torch.where(left, lam_c, lam_b), torch.where(left, d_c, d_b), torch.where(left, s_c, s_b)
            state = [p, tol, lam_a, d_a, s_a, lam_b, d_b, s_b, best, rows, done]
        out[rows] = best
        return out


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
