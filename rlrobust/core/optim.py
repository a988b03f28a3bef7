"""One optimizer per agent: a single fused Adam(W) step over every network's param group, the
lean call that takes that step (:func:`adam_step`), and the cosine learning-rate decay IDQL and
RIQL anneal their actors with.

Adam is per-parameter, so one optimizer with a param group per network (each with its own
learning rate / weight decay) makes exactly the updates separate optimizers would; parameters
without a gradient are skipped, as if their own optimizer had not stepped. The fused kernel does
the whole step in one call, 2-3x faster than the ``foreach`` path on CPU and far faster than the
per-tensor loop (DSAC, IDQL, IQN and RIQL use it; ``docs/benchmarks.md``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.optim.optimizer as _torch_optimizer  # the global step hooks live here


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


def adam_step(optimizer: torch.optim.Optimizer, grads: list[torch.Tensor] | None = None) -> None:
    """``optimizer.step()`` of a fused Adam(W), bit for bit, without its per-step Python bookkeeping.

    ``grads`` (optional) are the gradients of every parameter of every group, in order (``None``
    for a parameter that did not get one); by default each parameter's ``.grad``. As in
    ``torch.optim.Adam``, a parameter without a gradient is skipped (its step counter does not
    move). Once every parameter being stepped has its Adam state, this runs the same two kernels
    as ``torch.optim.Adam(fused=True)`` (``_foreach_add_`` on the step counters, then
    ``_fused_adam_`` or ``_fused_adamw_``) per group; on a small network that bookkeeping costs as
    much as the kernel. The state stays in ``optimizer.state``, so ``state_dict`` and
    ``load_state_dict`` are unchanged. Anything else (the first step, which creates the state;
    non-fused, AMSGrad, capturable, differentiable or tensor-``lr`` groups; step hooks) goes
    through ``optimizer.step()``. ``tests/unit/test_optim.py`` checks both against torch.
    """
    flat = iter(grads) if grads is not None else None
    plan: list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor], list[Any]]] = []
    fast = not (
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _torch_optimizer._global_optimizer_pre_hooks
        or _torch_optimizer._global_optimizer_post_hooks
    )
    for group in optimizer.param_groups:
        params, group_grads = [], []
        for p in group["params"]:
            g = next(flat) if flat is not None else p.grad
            if g is not None:
                params.append(p)
                group_grads.append(g)
        states = [optimizer.state.get(p) for p in params]
        fast = fast and (
            group.get("fused") is True
            and not group["amsgrad"]
            and not group.get("capturable", False)
            and not group.get("differentiable", False)
            and isinstance(group["lr"], float)
            and all(states)
        )
        plan.append((group, params, group_grads, states))
    if not fast:
        _plain_step(optimizer, plan, grads is not None)
        return
    for group, params, group_grads, states in plan:
        if not params:
            continue
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1)
        kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
        beta1, beta2 = group["betas"]
        kernel(
            params,
            group_grads,
            [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
        )


def _plain_step(optimizer: torch.optim.Optimizer, plan: list[Any], explicit: bool) -> None:
    """``optimizer.step()``, with explicit gradients put into ``.grad`` for the call and taken out after."""
    if explicit:
        for group, params, group_grads, _ in plan:
            for p in group["params"]:
                p.grad = None
            for p, g in zip(params, group_grads):
                p.grad = g
    optimizer.step()
    if explicit:
        for group, *_ in plan:
            for p in group["params"]:
                p.grad = None


def cosine_lr(base: float, step: int, decay_steps: int | None) -> float:
    """``base·½(1 + cos(π·min(step, T)/T))`` with ``T = decay_steps`` (PyTorch's
    ``CosineAnnealingLR`` down to 0, Loshchilov & Hutter 2017); ``base`` when ``T`` is None or 0."""
    if not decay_steps:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, decay_steps) / decay_steps))
