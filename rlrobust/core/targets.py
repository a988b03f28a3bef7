"""Target-network helpers: one place for Polyak averaging and hard copies (TorchRL/Tianshou idea)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy whose parameters never receive gradients (a target network)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``θ̄ ← (1 − τ)·θ̄ + τ·θ`` for parameters and floating buffers; τ=1 copies, τ=0 is a no-op.

    Runs without autograd and in place (``torch._foreach`` under the hood), so it is cheap
    enough to call every step.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1], got {tau}")
    t_params = [p for p in target.parameters()] + [b for b in target.buffers() if b.is_floating_point()]
    o_params = [p for p in online.parameters()] + [b for b in online.buffers() if b.is_floating_point()]
    if len(t_params) != len(o_params):
        raise ValueError("target and online networks have different structures")
    if tau == 1.0:
        torch._foreach_copy_(t_params, o_params)
    elif tau > 0.0:
        torch._foreach_lerp_(t_params, o_params, tau)


def hard_update(target: nn.Module, online: nn.Module) -> None:
    """Copy every parameter and buffer of ``online`` into ``target``."""
    polyak_update(target, online, 1.0)
