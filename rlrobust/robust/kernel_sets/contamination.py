"""R-contamination: ``{(1−δ)p + δq : q ∈ Δ}`` (Wang et al., ICML 2023)."""

from __future__ import annotations

import torch

from rlrobust.robust.kernel_sets.base import KernelSet
from rlrobust.robust.kernel_sets.mlmc import Sampler


class Contamination(KernelSet):
    """R-contamination ``{(1−δ)p + δq : q ∈ Δ}``: σ = (1−δ)·p·v + δ·min_s v(s) (min over *all* states)."""

    name = "contamination"
    radius_range = (0.0, 1.0)

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        d = self.radius
        return (1.0 - d) * (p * v).sum(-1) + d * v.min(-1).values

    def estimate(
        self,
        v: torch.Tensor,
        sampler: Sampler,
        generator: torch.Generator | None = None,
        psi: float = 0.6,
        max_level: int = 20,
    ) -> torch.Tensor:
        """Direct unbiased estimate ``(1−δ)·v(s') + δ·min v`` from one sample ``s'`` per row."""
        rows = torch.arange(v.shape[0], device=v.device)
        s_next = sampler(rows, 1).to(v.device)
        v64 = v.to(torch.float64)
        return (1.0 - self.radius) * v64.gather(1, s_next).squeeze(1) + self.radius * v64.amin(-1)
