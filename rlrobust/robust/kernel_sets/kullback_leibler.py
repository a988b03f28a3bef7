"""Kullback–Leibler: ``{q ∈ Δ, q ≪ p : KL(q‖p) ≤ δ}``, σ by its dual with a safeguarded Newton
solve."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from rlrobust.robust.kernel_sets.base import KernelSet
from rlrobust.robust.kernel_sets.fast_paths import (
    charged_columns,
    gather_columns,
    rowsum,
    split_two_point,
)


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
        self._keep = torch.tensor(
            [_kl_two_point_keep(self.radius, j / n) for j in range(n + 1)], dtype=torch.float64
        )

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        d = self.radius
        supp = p > 0
        v_min = torch.where(supp, v, torch.inf).amin(-1)
        w = torch.where(
            supp, v - v_min.unsqueeze(-1), 0.0
        )  # ≥ 0 on the support, 0 at the best supported state
        span = w.amax(-1)
        p_best = rowsum(torch.where(supp & (w <= 1e-15 * span.unsqueeze(-1).clamp(min=1.0)), p, 0.0))
        interior = ((d < -torch.log(p_best)) & (span > 0)).nonzero().squeeze(1)
        if interior.numel():
            p_i, w_i, span_i = (x.index_select(0, interior) for x in (p, w, span))
            v_min[interior] += _kl_dual(p_i, w_i, span_i, d)
        return v_min

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ps, vs = gather_columns(p, v, *charged_columns(p))
        return split_two_point(ps, vs, self._two_point, self._support).view(p.shape[:2])

    def _support_pair(
        self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        return lo + float(self._keep[2 ** (self.TABLE_BITS - 1)]) * (hi - lo)

    def _two_point(
        self, lo: torch.Tensor, hi: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
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


def _kl_dual(
    p: torch.Tensor, w: torch.Tensor, span: torch.Tensor, delta: float, fixed: int = 5, max_iter: int = 300
) -> torch.Tensor:
    """``max_β h(β)`` for rows ``p``, ``w ≥ 0`` (M, k) with ``min_{supp p} w = 0`` and an interior optimum.

    See :class:`KullbackLeibler`. ``fixed`` iterations run on every row before the first
    convergence check; after that, converged rows leave the batch.
    """
    out = torch.empty_like(span)
    mean_p = rowsum(p * w)
    var_p = rowsum(p * (w - mean_p.unsqueeze(-1)) ** 2)
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
        z = rowsum(e)
        m1 = rowsum(e * w) / z
        m2 = rowsum(e * w2) / z
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
