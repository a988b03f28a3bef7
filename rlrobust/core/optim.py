"""One optimizer per agent: a single fused Adam(W) step over every network's param group, and
the cosine learning-rate decay IDQL and RIQL anneal their actors with.

Adam is per-parameter, so one optimizer with a param group per network (each with its own
learning rate / weight decay) makes exactly the updates separate optimizers would; parameters
without a gradient are skipped, as if their own optimizer had not stepped. The fused kernel does
the whole step in one call, 2-3x faster than the ``foreach`` path on CPU and far faster than the
per-tensor loop (DSAC, IDQL and RIQL use it; ``docs/benchmarks.md``).
"""

from __future__ import annotations

import math
from typing import Any

import torch


def fused_adam(
    groups: list[dict[str, Any]] | list[torch.Tensor], lr: float, *, decoupled: bool = False, **options: Any
) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` (or ``AdamW`` with ``decoupled=True``) over ``groups``, fused where supported.

    ``groups`` are param groups or a plain list of parameters. Groups may set their own ``lr``
    and ``weight_decay``; AdamW with ``weight_decay=0`` is Adam. ``options`` (``eps``, ``betas``,
    ...) go to the optimizer. Where the fused kernel is missing (older torch builds on CPU) the
    ``foreach`` implementation makes the same updates.
    """
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    try:
        return cls(groups, lr=lr, fused=True, **options)
    except (RuntimeError, ValueError):  # pragma: no cover - depends on device/torch build
        return cls(groups, lr=lr, foreach=True, **options)


def cosine_lr(base: float, step: int, decay_steps: int | None) -> float:
    """``base·½(1 + cos(π·min(step, T)/T))`` with ``T = decay_steps`` (PyTorch's
    ``CosineAnnealingLR`` down to 0, Loshchilov & Hutter 2017); ``base`` when ``T`` is None or 0."""
    if not decay_steps:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, decay_steps) / decay_steps))
