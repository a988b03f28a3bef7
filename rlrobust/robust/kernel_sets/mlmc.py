"""The multilevel Monte Carlo (MLMC) draws of :meth:`KernelSet.estimate`: the level of each
row and the counts of its samples (Blanchet & Glynn; Wang et al., ICML 2023)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

#: ``sampler(rows, n) -> (len(rows), n)`` int64 next states drawn from the nominal rows ``rows``.
Sampler = Callable[[torch.Tensor, int], torch.Tensor]


def mlmc_levels(
    n_rows: int,
    psi: float,
    max_level: int,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
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
