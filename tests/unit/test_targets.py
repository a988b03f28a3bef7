"""B5: target-network helpers (Polyak averaging, hard copies, frozen copies)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlrobust.core.targets import frozen_copy, hard_update, polyak_update


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    target = frozen_copy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    return online, target


def _flat(m: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in m.parameters()])


def test_tau_one_copies_zero_is_noop_half_is_midpoint():
    online, target = _pair()
    before, theta = _flat(target).clone(), _flat(online).clone()
    polyak_update(target, online, 0.0)
    assert torch.equal(_flat(target), before)
    polyak_update(target, online, 0.5)
    assert torch.allclose(_flat(target), 0.5 * before + 0.5 * theta, atol=1e-7)
    polyak_update(target, online, 1.0)
    assert torch.equal(_flat(target), theta)


def test_hard_update_and_frozen_copy():
    online, target = _pair()
    assert all(not p.requires_grad for p in target.parameters())
    hard_update(target, online)
    assert torch.equal(_flat(target), _flat(online))


def test_no_autograd_graph():
    online, target = _pair()
    loss = online(torch.randn(2, 3)).sum()  # online params in a live graph
    polyak_update(target, online, 0.3)
    assert all(p.grad_fn is None and not p.requires_grad for p in target.parameters())
    loss.backward()  # the online graph is untouched by the update
    assert all(p.grad is not None for p in online.parameters())


def test_invalid_tau():
    online, target = _pair()
    with pytest.raises(ValueError, match="tau"):
        polyak_update(target, online, 1.5)
