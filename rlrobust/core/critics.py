"""IQN's distributional critic for discrete actions, returning :class:`~rlrobust.core.types.CriticOutput`.

:class:`ImplicitQuantileCritic` — ``Z_τ(s, ·)`` for any fractions ``τ`` (Dabney et al. 2018): a
torso ``ψ(s)``, the cosine embedding ``φ(τ)``, their product, then a head. Quantiles are laid out
as ``(B, N, A)`` and ``q`` is their mean over the ``N`` fractions. It uses PyTorch's default
``nn.Linear`` init, which is the same distribution as dopamine's ``variance_scaling(1/3, fan_in,
uniform)``: ``U(±1/√fan_in)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from rlrobust.core.networks import CosineEmbedding, mlp
from rlrobust.core.types import CriticOutput


def _sequential(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` with ``nn.Linear`` and ``nn.ReLU`` applied functionally: these critics run
    several times per environment step on small batches, where ``Module.__call__`` (≈ 2 µs a
    layer on CPU) is a visible share. Same result; module hooks on those layers are not called."""
    for layer in layers:
        if type(layer) is nn.Linear:
            x = F.linear(x, layer.weight, layer.bias)
        elif type(layer) is nn.ReLU:
            x = torch.relu(x)
        else:
            x = layer(x)
    return x


class ImplicitQuantileCritic(nn.Module):
    """``Z_τ(s, a) = head(ψ(s) ⊙ φ(τ))_a`` for discrete actions.

    Two levels of API: ``forward`` / ``quantiles`` / ``action_quantiles`` take observations and
    fractions; the ``head_*`` methods take torso features ``ψ = features(obs)`` and embeddings
    ``φ = embed(taus)`` so an agent can reuse one torso pass (or one embedding) several times.
    Fractions are ``(B, N)`` (one set per observation) or ``(1, N)`` (shared by the batch, which
    runs the embedding on ``N`` rows instead of ``B·N``).

    Args:
        obs_dim: size of the (vector) observation.
        n_actions: number of discrete actions ``A``.
        net_arch: hidden widths of the torso ``ψ``; the embedding ``φ`` maps onto the last one.
        head_arch: hidden widths after the product (the paper's Atari net has ``[512]``). The
            default ``()`` is a single linear layer ``V, c``, and then ``Z_τ(s, a) = φ(τ)·(ψ(s) ⊙
            V_a) + c_a``: the ``(B, N, W)`` product is never formed and means over ``τ`` move
            inside (``Q = (ψ ⊙ mean_n φ_n)·Vᵀ + c``), which keeps many fractions cheap.
        embedding_dim: number of cosines ``n`` in ``φ`` (64 in the paper).
        act: activation of torso and head.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        net_arch: Sequence[int] = (256, 256),
        *,
        head_arch: Sequence[int] = (),
        embedding_dim: int = 64,
        act: str = "relu",
    ) -> None:
        super().__init__()
        if not net_arch:
            raise ValueError("ImplicitQuantileCritic needs at least one torso layer in net_arch, got []")
        self.n_actions = n_actions
        self.torso = mlp(obs_dim, net_arch, None, act=act)
        self.embedding = CosineEmbedding(embedding_dim, net_arch[-1])
        self.head = mlp(net_arch[-1], head_arch, n_actions, act=act)
        self._linear_head = len(self.head) == 1

    # ----------------------------------------------------------------- building blocks
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The torso ``ψ(s)``: ``(B, obs_dim)`` → ``(B, W)``."""
        return _sequential(self.torso, obs)

    def embed(self, taus: torch.Tensor) -> torch.Tensor:
        """The fraction embedding ``φ(τ)``: ``(B|1, N)`` → ``(B|1, N, W)``."""
        if taus.dim() != 2:
            raise ValueError(f"ImplicitQuantileCritic needs taus (B, N) or (1, N), got {tuple(taus.shape)}")
        phi: torch.Tensor = self.embedding(taus)
        return phi

    @staticmethod
    def _check(psi: torch.Tensor, phi: torch.Tensor) -> None:
        if phi.shape[0] not in (1, psi.shape[0]):
            raise ValueError(
                f"ImplicitQuantileCritic: taus for {phi.shape[0]} rows do not match features "
                f"{tuple(psi.shape)}; give taus (B, N) or (1, N), got embedding {tuple(phi.shape)}"
            )

    def head_quantiles(self, psi: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``Z_τ(s, ·)``: ``psi (B, W)``, ``phi (B|1, N, W)`` → ``(B, N, A)``."""
        self._check(psi, phi)
        if not self._linear_head:
            return _sequential(self.head, psi.unsqueeze(1) * phi)
        head = cast(nn.Linear, self.head[0])  # _linear_head: the head is one nn.Linear
        b, w = psi.shape
        m = psi.unsqueeze(1) * head.weight  # (B, A, W): ψ_b ⊙ V_a
        if phi.shape[0] == 1:  # one (N, W) @ (W, B·A) matmul
            z = (phi.squeeze(0) @ m.reshape(-1, w).t()).view(-1, b, self.n_actions).transpose(0, 1)
        else:
            z = torch.bmm(phi, m.transpose(1, 2))
        return z + head.bias  # (B, N, A)

    def head_q(self, psi: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``(1/N) Σ_n Z_{τ_n}(s, ·)``: ``psi (B, W)``, ``phi (B|1, N, W)`` → ``(B, A)``."""
        self._check(psi, phi)
        if not self._linear_head:
            return _sequential(self.head, psi.unsqueeze(1) * phi).mean(dim=1)
        head = cast(nn.Linear, self.head[0])  # _linear_head: the head is one nn.Linear
        return F.linear(psi * phi.mean(dim=1), head.weight, head.bias)  # linear head: the mean moves inside

    def head_action_quantiles(
        self, psi: torch.Tensor, phi: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``Z_τ(s, a)`` of one action per row: ``actions (B,)`` → ``(B, N)``.

        Equals ``head_quantiles`` gathered at ``actions``; a linear head computes only that row,
        ``φ_n·(ψ_b ⊙ V_{a_b}) + c_{a_b}``.
        """
        self._check(psi, phi)
        actions = actions.reshape(-1).long()
        if not self._linear_head:
            z = _sequential(self.head, psi.unsqueeze(1) * phi)  # (B, N, A)
            return z.gather(2, actions.view(-1, 1, 1).expand(-1, z.shape[1], 1)).squeeze(2)
        head = cast(nn.Linear, self.head[0])  # _linear_head: the head is one nn.Linear
        m = psi * F.embedding(actions, head.weight)  # (B, W): ψ_b ⊙ V_{a_b}
        bias = F.embedding(actions, head.bias.unsqueeze(1))  # (B, 1): c_{a_b}
        if phi.shape[0] == 1:  # c_{a_b} + m_b·φ_n, one addmm
            return torch.addmm(bias, m, phi.squeeze(0).t())  # (B, N)
        return torch.baddbmm(bias.unsqueeze(2), phi, m.unsqueeze(2)).squeeze(2)  # (B, N)

    # ----------------------------------------------------------------- observations and fractions
    def quantiles(self, obs: torch.Tensor, taus: torch.Tensor) -> torch.Tensor:
        """``Z_τ(s, ·)``: ``obs (B, obs_dim)``, ``taus (B|1, N)`` → ``(B, N, A)``."""
        return self.head_quantiles(self.features(obs), self.embed(taus))

    def action_quantiles(self, obs: torch.Tensor, taus: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Z_τ(s, a)`` of the given actions: ``actions (B,)`` → ``(B, N)``."""
        return self.head_action_quantiles(self.features(obs), self.embed(taus), actions)

    def forward(self, obs: torch.Tensor, taus: torch.Tensor) -> CriticOutput:
        """Quantiles ``(B, N, A)`` at ``taus (B|1, N)``, ``q (B, A)`` their mean, ``taus (B, N)``.

        With ``taus ~ U[0, 1]`` the mean is a Monte-Carlo estimate of the expected return; with
        distorted fractions ``β(u)`` it is the distorted (risk-sensitive) value.
        """
        z = self.quantiles(obs, taus)
        return CriticOutput(q=z.mean(dim=1), quantiles=z, taus=taus.expand(z.shape[0], -1))
