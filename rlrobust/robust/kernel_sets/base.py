"""The base class of every kernel uncertainty set, :class:`KernelSet`, and the validation of
transition models (:class:`ModelError`, :func:`check_distribution`)."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from rlrobust.core.errors import ConfigError, RlrobustError
from rlrobust.robust.kernel_sets.mlmc import Sampler, mlmc_counts, mlmc_levels


class ModelError(RlrobustError, ValueError):
    """A transition model, distribution or value vector is malformed (shape, sign, sum, NaN)."""


def check_distribution(p: np.ndarray, what: str = "p", atol: float = 1e-6) -> np.ndarray:
    """Validate rows of probabilities (last axis) and return them renormalised, float64."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ModelError(
            f"{what} must have a non-empty last axis of next-state probabilities, got shape {p.shape}"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ModelError(f"{what} must hold finite non-negative probabilities; got min {np.nanmin(p):.3g}")
    sums = p.sum(-1)
    if np.any(np.abs(sums - 1.0) > atol):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        raise ModelError(f"{what} rows must sum to 1 (within {atol}); found a row summing to {worst:.8g}")
    normalized: np.ndarray = p / sums[..., None]
    return normalized


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
        if (
            not isinstance(radius, (int, float, np.floating))
            or not (lo <= float(radius) <= hi)
            or math.isnan(radius)
        ):
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
            raise ModelError(
                f"v of shape {v.shape} does not match p of shape {p.shape}; valid: (S,) or (N, S) each"
            )
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

    def _support_pair(
        self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
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
            raise ConfigError(
                f"MLMC parameter psi={psi} must lie in (0.5, 1) (finite expected cost); 0.6 is the default"
            )
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
            out[rows] = self.support_point(v1, first) + (
                sig[0] - 0.5 * (sig[1] + sig[2])
            ) / prob.index_select(0, rows)
        return out
