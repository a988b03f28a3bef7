"""Batched tensor helpers the sets' exact solvers share: restriction to the charged states,
target-major gathers, row sums as matrix-vector products, and the split of rows into closed-form
two-point problems and general ones."""

from __future__ import annotations

from collections.abc import Callable

import torch


def charged_columns(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def gather_columns(
    p: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``p`` (K, N, S), ``v`` (N, S) restricted to the columns ``idx`` (N, k): flat ``(K·N, k)`` each,
    with zero mass on the padding."""
    K, N, k = p.shape[0], *idx.shape
    ps = p.gather(-1, idx.expand(K, N, k)).mul_(valid).reshape(K * N, k)
    vs = v.gather(-1, idx).expand(K, N, k).reshape(K * N, k)
    return ps, vs


def target_major(table_t: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """``out[j, m, i] = table_t[j, src[m, i]]`` for a square ``table_t`` (S, S): (S, M, k), built one
    target row at a time (a gather along the last axis of a small table is slow in PyTorch)."""
    flat = src.reshape(-1)
    out = torch.empty(table_t.shape[0], flat.numel(), dtype=table_t.dtype, device=table_t.device)
    for j in range(table_t.shape[0]):
        torch.index_select(table_t[j], 0, flat, out=out[j])
    return out.view(table_t.shape[0], *src.shape)


def rowsum(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(-1)`` for a 2-D tensor as a matrix–vector product (reductions over a short last
    axis are an order of magnitude slower on CPU)."""
    return x @ torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)


def split_two_point(
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
    w = rowsum(torch.where(vs == hi.unsqueeze(-1), ps, 0.0))
    out, solved = two_point(lo, hi, w)
    rest = (~(solved & (charged.sum(-1) <= 2))).nonzero().squeeze(1)
    if rest.numel():
        out[rest] = general(ps.index_select(0, rest), vs.index_select(0, rest))
    return out
