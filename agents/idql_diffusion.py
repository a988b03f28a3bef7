"""IDQL's diffusion behaviour model: VP noise schedule, DDPM sampler step, LN-ResNet score network.

Follows philippe-eecs/IDQL ``jaxrl5`` (7582571): ``networks/diffusion.py`` (schedule, DDPM),
``networks/resnet.py`` (MLPResNet) and the Fourier time features (Hansen-Estruch et al. 2023,
arXiv 2304.10573).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rlrobust.core.networks import mlp


def vp_beta_schedule(timesteps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> torch.Tensor:
    """VP schedule ``β_t = 1 − exp(−b_min/T − ½(b_max − b_min)(2t − 1)/T²)``, ``t = 1..T``; float64 ``(T,)``."""
    if timesteps < 1:
        raise ValueError(f"the number of diffusion steps must be >= 1, got {timesteps}")
    t = torch.arange(1, timesteps + 1, dtype=torch.float64)
    alpha = torch.exp(-beta_min / timesteps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / timesteps**2)
    return 1.0 - alpha


def ddpm_step(
    x: torch.Tensor,
    eps_hat: torch.Tensor,
    t: int,
    betas: torch.Tensor,
    alpha_bars: torch.Tensor,
    noise: torch.Tensor | None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """One reverse step ``x ← (x − β_t/√(1 − ᾱ_t)·ε̂)/√α_t + 1[t > 0]·√β_t·temp·z``, clipped to ``[−1, 1]``.

    Args:
        x: ``(B, A)`` the current sample ``x_t``.
        eps_hat: ``(B, A)`` the predicted noise ``ε_ψ(s, x_t, t)``.
        t: step index ``0..T−1`` (0 is the last step, which adds no noise).
        betas: ``(T,)`` the schedule; ``alpha_bars = cumprod(1 − betas)``.
        noise: ``(B, A)`` standard normal ``z`` (ignored at ``t = 0``; may be ``None`` there).
        temperature: noise multiplier.
    """
    if x.shape != eps_hat.shape:
        raise ValueError(f"ddpm_step: x {tuple(x.shape)} and eps_hat {tuple(eps_hat.shape)} differ")
    beta, alpha_bar = float(betas[t]), float(alpha_bars[t])
    x = (x - beta / math.sqrt(1.0 - alpha_bar) * eps_hat) / math.sqrt(1.0 - beta)
    if t > 0:
        if noise is None:
            raise ValueError("ddpm_step needs noise for t > 0")
        x = x + math.sqrt(beta) * temperature * noise
    return x.clamp(-1.0, 1.0)


class FourierFeatures(nn.Module):
    """Learnable Fourier features ``[cos 2πWt, sin 2πWt]`` of the (scalar) diffusion step."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.init.normal_(torch.empty(dim // 2, 1), std=0.2))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # t (B, 1) float
        f = 2 * math.pi * t @ self.weight.T  # (B, dim/2)
        return torch.cat([torch.cos(f), torch.sin(f)], dim=-1)


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout drawing its mask from ``generator`` (never torch's global RNG)."""
    if generator is None or p == 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)


class ResNetBlock(nn.Module):
    """``x + W₂·swish(W₁·LN(dropout(x)))`` with a 4× wide hidden layer (jaxrl5 MLPResNetBlock)."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = self.norm(_dropout(x, self.dropout, generator))
        return x + self.fc2(nn.functional.silu(self.fc1(h)))


class ScoreNetwork(nn.Module):
    """``ε_ψ(s, ã, t)``: Fourier(t) → MLP → cond; LN-ResNet on ``[ã, s, cond]`` → ``(B, A)``.

    Dropout is active only when a ``generator`` is passed to :meth:`forward` (training).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        time_dim: int = 128,
        cond_arch: Sequence[int] = (256, 256),
        width: int = 256,
        blocks: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.time = FourierFeatures(time_dim)
        self.cond = mlp(time_dim, cond_arch[:-1], cond_arch[-1], act="silu")
        self.inp = nn.Linear(act_dim + obs_dim + cond_arch[-1], width)
        self.blocks = nn.ModuleList(ResNetBlock(width, dropout) for _ in range(blocks))
        self.out = nn.Linear(width, act_dim)

    def forward(
        self, obs: torch.Tensor, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        cond = self.cond(self.time(t.reshape(-1, 1).to(x.dtype)))
        h = self.inp(torch.cat([x, obs, cond], dim=-1))
        for block in self.blocks:
            h = block(h, generator)
        return self.out(nn.functional.silu(h))
