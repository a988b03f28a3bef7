"""Cosine embedding and IQN's distributional critic, against formulas written here."""

from __future__ import annotations

import math

import pytest
import torch

from rlrobust.core.critics import ImplicitQuantileCritic
from rlrobust.core.networks import CosineEmbedding
from rlrobust.core.types import CriticOutput


def test_cosine_embedding_shape_and_constant_first_feature():
    emb = CosineEmbedding(64, 32)
    taus = torch.rand(5, 7)
    assert emb(taus).shape == (5, 7, 32)
    feats = emb.features(taus)
    assert feats.shape == (5, 7, 64)
    assert torch.all(feats[..., 0] == 1.0)  # cos(π·0·τ) ≡ 1
    assert feats[0, 0, 3].item() == pytest.approx(math.cos(math.pi * 3 * taus[0, 0].item()), abs=1e-5)


def reference_quantiles(
    critic: ImplicitQuantileCritic, obs: torch.Tensor, taus: torch.Tensor
) -> torch.Tensor:
    """ReLU MLP torso, φ(τ) = ReLU(cos(π i τ) W + b), head on ψ ⊙ φ — written out by hand."""
    h = obs
    for layer in critic.torso:
        if isinstance(layer, torch.nn.Linear):
            h = torch.relu(h @ layer.weight.T + layer.bias)
    i = torch.arange(critic.embedding.linear.in_features, dtype=torch.float32)
    cos = torch.cos(math.pi * i * taus.unsqueeze(-1))
    phi = torch.relu(cos @ critic.embedding.linear.weight.T + critic.embedding.linear.bias)
    x = h.unsqueeze(1) * phi  # (B, N, W)
    linears = [m for m in critic.head if isinstance(m, torch.nn.Linear)]
    for layer in linears[:-1]:
        x = torch.relu(x @ layer.weight.T + layer.bias)
    return x @ linears[-1].weight.T + linears[-1].bias


@pytest.mark.parametrize("head_arch", [(), (16,)])
@pytest.mark.parametrize("shared", [False, True])
def test_implicit_quantile_critic_matches_reference(head_arch, shared):
    torch.manual_seed(0)
    critic = ImplicitQuantileCritic(3, 4, [32, 24], head_arch=head_arch, embedding_dim=8)
    obs = torch.randn(5, 3)
    taus = torch.rand(1 if shared else 5, 6)
    ref = reference_quantiles(critic, obs, taus.expand(5, 6))  # (B, N, A)
    out = critic(obs, taus)
    assert isinstance(out, CriticOutput)
    assert out.quantiles.shape == (5, 6, 4) and out.q.shape == (5, 4) and out.taus.shape == (5, 6)
    assert torch.allclose(out.quantiles, ref, atol=1e-5)
    assert torch.allclose(out.q, ref.mean(dim=1), atol=1e-5)  # Q = mean over quantiles
    psi, phi = critic.features(obs), critic.embed(taus)
    assert torch.allclose(critic.head_q(psi, phi), ref.mean(dim=1), atol=1e-5)
    actions = torch.tensor([0, 3, 1, 1, 2])
    chosen = critic.action_quantiles(obs, taus, actions)
    assert chosen.shape == (5, 6)
    assert torch.allclose(chosen, ref[torch.arange(5), :, actions], atol=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_action_quantiles_gradients_match_gather(shared):
    torch.manual_seed(1)
    critic = ImplicitQuantileCritic(3, 2, [16], embedding_dim=8)
    obs, taus, actions = torch.randn(4, 3), torch.rand(1 if shared else 4, 5), torch.tensor([0, 1, 1, 0])
    w = torch.randn(4, 5)
    g1 = torch.autograd.grad(
        (critic.action_quantiles(obs, taus, actions) * w).sum(), list(critic.parameters())
    )
    z = critic.quantiles(obs, taus).gather(2, actions.view(4, 1, 1).expand(4, 5, 1)).squeeze(2)
    g2 = torch.autograd.grad((z * w).sum(), list(critic.parameters()))
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-5)


def test_implicit_quantile_critic_rejects_bad_taus():
    critic = ImplicitQuantileCritic(3, 2, [8])
    with pytest.raises(ValueError, match=r"4 rows.*\(5, 8\)"):
        critic(torch.zeros(5, 3), torch.zeros(4, 6))
    with pytest.raises(ValueError, match="net_arch"):
        ImplicitQuantileCritic(3, 2, [])
