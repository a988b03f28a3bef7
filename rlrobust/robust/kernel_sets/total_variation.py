"""Total variation: ``{q ∈ Δ : ½‖q − p‖₁ ≤ δ}``, σ by moving mass onto the lowest value."""

from __future__ import annotations

import torch

from rlrobust.robust.kernel_sets.base import KernelSet
from rlrobust.robust.kernel_sets.fast_paths import (
    charged_columns,
    gather_columns,
    rowsum,
)


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
        idx, valid = charged_columns(p)
        order = v.gather(-1, idx).masked_fill_(~valid, -torch.inf).sort(-1, descending=True).indices
        ps, vs = gather_columns(p, v, idx.gather(-1, order), valid.gather(-1, order))
        v_min = v.amin(-1).expand(p.shape[0], -1).reshape(-1)
        return self._move_mass(ps, vs, v_min).view(p.shape[:2])

    def _support_point(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.radius) * v.gather(1, x.unsqueeze(1)).squeeze(1) + self.radius * v.amin(-1)

    def _support_pair(
        self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        # remove δ from hi (it holds ½), then any excess from lo; all of it goes to min v
        from_hi, from_lo = min(self.radius, 0.5), max(self.radius - 0.5, 0.0)
        return (0.5 - from_lo) * lo + (0.5 - from_hi) * hi + self.radius * v.amin(-1)

    def _move_mass(self, ps: torch.Tensor, vs: torch.Tensor, v_min: torch.Tensor) -> torch.Tensor:
        """``ps`` in decreasing order of ``vs`` (M, k): remove δ from the top, add it at ``v_min`` (M,)."""
        above = ps.cumsum(-1).sub_(ps)  # mass strictly above each state in the order
        removed = torch.minimum((self.radius - above).clamp_(min=0.0), ps)
        return rowsum((ps - removed).mul_(vs)) + rowsum(removed) * v_min
