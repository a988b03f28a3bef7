"""``adam_step`` (the lean fused-Adam step every agent uses) against ``torch.optim.Adam.step``."""

from __future__ import annotations

import copy

import pytest
import torch

from rlrobust.core.optim import adam_step, fused_adam

SHAPES = [(5, 3), (3,), (2, 5), (4,)]


def _params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).requires_grad_(True) for s in SHAPES]


def _not_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("adam_step fell back to optimizer.step() with every state in place")


def _groups(params: list[torch.Tensor]) -> list[dict]:
    """Two groups with their own learning rate and weight decay, as the agents build them."""
    return [
        {"params": params[:2], "lr": 0.05},
        {"params": params[2:], "lr": 0.01, "weight_decay": 0.1},
    ]


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("explicit", [False, True])
def test_adam_step_equals_torch_step_bit_for_bit(decoupled, explicit):
    fast_p, ref_p = _params(), _params()
    fast = fused_adam(_groups(fast_p), 0.05, decoupled=decoupled, eps=1e-4)
    ref = fused_adam(_groups(ref_p), 0.05, decoupled=decoupled, eps=1e-4)
    g = torch.Generator().manual_seed(1)
    for step in range(8):
        grads: list[torch.Tensor | None] = [torch.randn(s, generator=g) for s in SHAPES]
        if step % 3 == 2:  # the second group gets no gradient: skipped, its counters stay
            grads[2] = grads[3] = None
        for p, grad in zip(ref_p, grads):
            p.grad = None if grad is None else grad.clone()
        ref.step()
        if explicit:
            adam_step(fast, [None if x is None else x.clone() for x in grads])
            assert all(p.grad is None for p in fast_p)
        else:
            for p, grad in zip(fast_p, grads):
                p.grad = None if grad is None else grad.clone()
            adam_step(fast)
        assert all(torch.equal(a, b) for a, b in zip(fast_p, ref_p)), f"step {step}"
        if step == 4:  # a reloaded state continues exactly (no shared tensors)
            fast = fused_adam(_groups(fast_p), 0.05, decoupled=decoupled, eps=1e-4)
            fast.load_state_dict(copy.deepcopy(ref.state_dict()))
        fast.step = _not_called  # every state exists now: the fast path must take every step
    state_fast, state_ref = fast.state_dict()["state"], ref.state_dict()["state"]
    assert state_fast.keys() == state_ref.keys()
    for i in state_ref:
        assert all(torch.equal(state_fast[i][k], state_ref[i][k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_adam_step_falls_back_to_torch_where_the_fast_path_does_not_apply():
    # Non-fused, AMSGrad, and an optimizer with a step hook: each must still step like torch.
    for make in (
        lambda ps: torch.optim.Adam(ps, lr=0.05, foreach=False),
        lambda ps: torch.optim.Adam(ps, lr=0.05, fused=True, amsgrad=True),
    ):
        fast_p, ref_p = _params(), _params()
        fast, ref = make(fast_p), make(ref_p)
        calls: list[int] = []
        fast.register_step_post_hook(lambda *_, calls=calls: calls.append(1))
        for _ in range(3):
            for a, b in zip(fast_p, ref_p):
                a.grad = torch.ones_like(a)
                b.grad = torch.ones_like(b)
            adam_step(fast)
            ref.step()
        assert calls == [1, 1, 1]  # the hook ran: the call went through optimizer.step()
        assert all(torch.equal(a, b) for a, b in zip(fast_p, ref_p))
