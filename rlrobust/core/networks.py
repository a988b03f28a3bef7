"""Network building blocks shared by the agents.

* :func:`mlp` — the plain MLP every agent starts from.
* :class:`EnsembleLinear` / :class:`EnsembleMLP` — K independent MLPs evaluated as one batched
  matmul (weights ``[K, in, out]``), as in EDAC/RIQL.
* :class:`CosineEmbedding` — IQN's τ-embedding ``φ(τ)_j = ReLU(Σ_i cos(π i τ) w_ij + b_j)``.
* :class:`TanhGaussianActor` — the tanh-squashed Gaussian policy of SAC/DSAC, rescaled to the
  action box, with the exact log-probability correction.
* :class:`BoxRescale` — the affine map between ``[−1, 1]^d`` and a bounded action box, for
  agents whose networks work in ``[−1, 1]`` (IDQL, RIQL).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "elu": nn.ELU,
}


def activation(name: str) -> nn.Module:
    """An activation module by name; ``ValueError`` lists the valid names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int | None,
    *,
    act: str = "relu",
    layer_norm: bool = False,
) -> nn.Sequential:
    """``Linear → [LayerNorm] → act`` per hidden width, then a linear output (if ``out_dim``)."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers.append(nn.Linear(last, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(activation(act))
        last = width
    if out_dim is not None:
        layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """K independent linear layers: input ``(K, B, in)`` → ``(K, B, out)``."""

    def __init__(self, ensemble_size: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)
        # Same distribution as nn.Linear's default init, member by member.
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """K MLPs in one module. Input ``(B, in)`` (shared) or ``(K, B, in)``; output ``(K, B, out)``."""

    def __init__(
        self, ensemble_size: int, in_dim: int, hidden: Sequence[int], out_dim: int, *, act: str = "relu"
    ) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        dims = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [EnsembleLinear(ensemble_size, a, b), activation(act)]
        layers.append(EnsembleLinear(ensemble_size, dims[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        out: torch.Tensor = self.net(x)
        return out


class CosineEmbedding(nn.Module):
    """IQN's τ-embedding: ``τ (B, N)`` → ``(B, N, dim)``.

    Uses ``i = 0..n_cos-1`` as in the paper, so the ``i = 0`` feature is identically 1.
    """

    freqs: torch.Tensor  # buffer

    def __init__(self, n_cos: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("freqs", math.pi * torch.arange(n_cos, dtype=torch.float32), persistent=False)
        self.linear = nn.Linear(n_cos, dim)

    def features(self, taus: torch.Tensor) -> torch.Tensor:
        """The raw cosines ``cos(π i τ)``, shape ``(B, N, n_cos)``."""
        return torch.cos(taus.unsqueeze(-1) * self.freqs)

    def forward(self, taus: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.features(taus)))


class TanhGaussianActor(nn.Module):
    """``a = low + (tanh(u) + 1)·(high − low)/2`` with ``u ~ N(μ(s), σ(s)²)``.

    ``log π(a|s) = log N(u) − Σ log(1 + 1e-6 − tanh²u) − Σ log((high − low)/2)``.
    """

    scale: torch.Tensor  # buffers: (high − low)/2 and (high + low)/2
    offset: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        low: torch.Tensor,
        high: torch.Tensor,
        *,
        act: str = "relu",
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
    ) -> None:
        super().__init__()
        self.trunk = mlp(obs_dim, hidden, None, act=act)
        width = hidden[-1] if hidden else obs_dim
        self.mean = nn.Linear(width, act_dim)
        self.log_std = nn.Linear(width, act_dim)
        self.log_std_bounds = log_std_bounds
        self.register_buffer("scale", (high - low).float() / 2.0)
        self.register_buffer("offset", (high + low).float() / 2.0)

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (bounded) log-std of the Gaussian before the tanh squashing."""
        h = self.trunk(obs)
        lo, hi = self.log_std_bounds
        return self.mean(h), self.log_std(h).clamp(lo, hi)

    def forward(
        self, obs: torch.Tensor, *, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(action, log_prob)``; the sample is reparameterized (gradients flow)."""
        mean, log_std = self.distribution_params(obs)
        std = log_std.exp()
        if deterministic:
            u = mean
        else:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            u = mean + std * noise
        log_prob = squashed_gaussian_log_prob(u, mean, log_std, self.scale)
        return self.squash(u), log_prob

    def squash(self, u: torch.Tensor) -> torch.Tensor:
        """``offset + scale·tanh(u)``: a pre-squash sample (or mean) as an action in the box."""
        return torch.tanh(u) * self.scale + self.offset

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action ``squash(mean)``, ``(B, act_dim)``, differentiable in ``obs``."""
        mean, _ = self.distribution_params(obs)
        return self.squash(mean)


class BoxRescale:
    """The affine map between ``[−1, 1]^d`` and the box ``[low, high]``: ``a = offset + scale·u``.

    Args:
        low, high: the finite bounds (arrays or tensors of the action shape).
        device: where the two float32 tensors live.
    """

    def __init__(
        self,
        low: torch.Tensor | Sequence[float],
        high: torch.Tensor | Sequence[float],
        device: str | torch.device | None = None,
    ) -> None:
        low_t, high_t = torch.as_tensor(low).float(), torch.as_tensor(high).float()
        self.offset = ((high_t + low_t) / 2).to(device)
        self.scale = ((high_t - low_t) / 2).to(device)

    def to_box(self, u: torch.Tensor) -> torch.Tensor:
        """``u ∈ [−1, 1]^d`` → the action ``u·scale + offset``."""
        return u * self.scale + self.offset

    def to_unit(self, actions: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
        """An action in the box → ``[−1, 1]^d``, clipped to ``±clip``."""
        return ((actions - self.offset) / self.scale).clamp(-clip, clip)


def squashed_gaussian_log_prob(
    u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Log-density of ``a = offset + scale·tanh(u)`` for ``u ~ N(mean, exp(log_std)²)``, summed
    over the last (action) dimension."""
    gaussian = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    correction = torch.log(1 + 1e-6 - torch.tanh(u) ** 2) + torch.log(scale)
    return (gaussian - correction).sum(-1)
