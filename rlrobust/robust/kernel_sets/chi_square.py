"""χ²: ``{q ∈ Δ, q ≪ p : Σ (q−p)²/p ≤ δ}``, σ by its dual over sorted breakpoints."""

from __future__ import annotations

import math

import torch

from rlrobust.robust.kernel_sets.base import KernelSet
from rlrobust.robust.kernel_sets.fast_paths import (
    charged_columns,
    gather_columns,
    rowsum,
    split_two_point,
)


class ChiSquare(KernelSet):
    """χ² ball ``{q ∈ Δ, q ≪ p : Σ_s (q_s − p_s)²/p_s ≤ δ}``.

    Dual (Wang et al., ICML 2023): σ = max_α E_p[min(v, α)] − √(δ·Var_p(min(v, α))). Between two sorted
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
        ps, vs = gather_columns(p, v, *charged_columns(p))
        return split_two_point(ps, vs, self._two_point, self._support).view(p.shape[:2])

    def _support_pair(
        self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        return self._two_point(lo, hi, torch.full_like(lo, 0.5))[0]

    def _two_point(
        self, lo: torch.Tensor, hi: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keep = w - torch.minimum(torch.sqrt((self.radius * w * (1.0 - w)).clamp_(min=0.0)), w)
        return lo + keep * (hi - lo), torch.ones_like(w, dtype=torch.bool)

    def _support_sorted(self, ps: torch.Tensor, vs: torch.Tensor) -> torch.Tensor:
        """The dual on rows ``ps`` (M, k) whose values ``vs`` are sorted ascending."""
        mean = rowsum(ps * vs).unsqueeze(-1)
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
