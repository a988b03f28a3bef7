"""Wasserstein: ``{q ∈ Δ : W_l(q, p) ≤ δ}`` for a metric d over states, σ by its dual with exact
cutting planes."""

from __future__ import annotations

import numpy as np
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.robust.kernel_sets.base import KernelSet, ModelError
from rlrobust.robust.kernel_sets.fast_paths import (
    charged_columns,
    rowsum,
    target_major,
)


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
            if (
                m.ndim != 2
                or m.shape[0] != m.shape[1]
                or not np.all(np.isfinite(m))
                or np.any(np.diag(m) != 0)
                or np.any(m[off] <= 0)
            ):
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
                raise ModelError(
                    f"Wasserstein metric is {self.metric.shape} but the model has {n_states} states"
                )
            else:
                m = self.metric
            self._cost_cache[key] = torch.as_tensor(m**self.order, dtype=torch.float64, device=device)
        return self._cost_cache[key]

    def _support(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self._support_shared(p.unsqueeze(0), v)[0]

    def _support_shared(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        K, N, S = p.shape
        idx, valid = charged_columns(p)  # only charged states send mass: (N, k) sources
        ps = p.gather(-1, idx.expand(K, N, idx.shape[1])).mul_(valid).reshape(K * N, -1)
        base = torch.arange(N, device=p.device).repeat(K)  # the row of v of each flat row
        out = torch.empty(K * N, dtype=torch.float64, device=p.device)
        point = ps.amax(-1) == 1.0
        rows = point.nonzero().squeeze(1)
        if rows.numel():
            b = base.index_select(0, rows)
            x = (
                idx.index_select(0, b)
                .gather(-1, ps.index_select(0, rows).argmax(-1, keepdim=True))
                .squeeze(-1)
            )
            out[rows] = self._support_point(v.index_select(0, b), x)
        rows = (~point).nonzero().squeeze(1)
        if rows.numel():
            b = base.index_select(0, rows)
            out[rows] = self._solve_chunked(
                ps.index_select(0, rows), v.index_select(0, b), idx.index_select(0, b)
            )
        return out.view(K, N)

    def _support_pair(
        self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        out = torch.empty_like(lo)
        same = x == y
        rows = same.nonzero().squeeze(1)
        if rows.numel():
            out[rows] = self._support_point(v.index_select(0, rows), x.index_select(0, rows))
        rows = (~same).nonzero().squeeze(1)
        if rows.numel():
            src = torch.stack([x, y], 1).index_select(0, rows)
            out[rows] = self._solve_chunked(
                torch.full(src.shape, 0.5, dtype=v.dtype, device=v.device), v.index_select(0, rows), src
            )
        return out

    def _solve_chunked(self, p: torch.Tensor, v: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """:meth:`_solve` in chunks whose ``(S, chunk, k)`` intermediates hold about 4M entries."""
        chunk = max(1, 4_000_000 // (src.shape[1] * v.shape[1]))
        if p.shape[0] <= chunk:
            return self._solve(p, v, src)
        return torch.cat(
            [
                self._solve(p[i : i + chunk], v[i : i + chunk], src[i : i + chunk])
                for i in range(0, p.shape[0], chunk)
            ]
        )

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
                tables.append(
                    [(j, j, 0.0) for j in near]
                    + [(j, k, (budget - c[s, j]) / (c[s, k] - c[s, j])) for j in near for k in far]
                )
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
        cost = target_major(metric.t(), src)
        inv_cost = target_major(torch.where(metric > 0, 1.0 / metric, 0.0).t(), src)
        out = torch.empty(p.shape[0], dtype=p.dtype, device=p.device)
        v_src = v.gather(1, src)
        v_t = v.t().contiguous()  # (S, M)

        def evaluate(
            lam: torch.Tensor, p: torch.Tensor, v_t: torch.Tensor, cost: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            m = torch.addcmul(v_t.unsqueeze(-1), cost, lam.view(1, -1, 1))
            g = m.amin(0)  # g_i(λ) = min_j v_j + λ·d(i, j)^l
            # d(i, j*)^l of a minimiser j* is a supergradient of g_i at λ (the cheapest one: the right derivative)
            slope = cost.masked_fill(m != g, torch.inf).amin(0)
            return -lam * budget + rowsum(p * g), -budget + rowsum(p * slope)

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
        d_b = rowsum(p * v_src) - lam_b * budget
        s_b = rowsum(p * crossing) - budget
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
            lam_a, d_a, s_a = (
                torch.where(right, lam_c, lam_a),
                torch.where(right, d_c, d_a),
                torch.where(right, s_c, s_a),
            )
            lam_b, d_b, s_b = (
                torch.where(left, lam_c, lam_b),
                torch.where(left, d_c, d_b),
                torch.where(left, s_c, s_b),
            )
            state = [p, tol, lam_a, d_a, s_a, lam_b, d_b, s_b, best, rows, done]
        out[rows] = best
        return out
