"""Risk distortions for distributional acting (Dabney et al. 2018, §3.1).

A distortion ``β: [0, 1] → [0, 1]`` is a non-decreasing map with ``β(0) = 0`` and ``β(1) = 1``.
An IQN agent acting under ``β`` draws ``u ~ U[0, 1]``, evaluates the quantiles at ``τ = β(u)``
and averages them: ``Q_β(s, a) = E_u[Z_{β(u)}(s, a)]``, the expectation under the distorted
distribution. Training stays risk-neutral.

=========  ==========================================================  =============================
name       β_η(τ)                                                      η (parameter)
=========  ==========================================================  =============================
neutral    τ                                                           none
cvar       η·τ (the mean of the lowest η-fraction of returns)          η ∈ (0, 1]; 1 = neutral
wang       Φ(Φ⁻¹(τ) + η)                                               any real; < 0 averse, 0 = neutral
cpw        τ^η / (τ^η + (1 − τ)^η)^{1/η}                               η ∈ [0.28, 10]; 1 = neutral
pow        τ^{1/(1+|η|)} if η ≥ 0, else 1 − (1 − τ)^{1/(1+|η|)}         any real; < 0 averse, 0 = neutral
=========  ==========================================================  =============================

CPW (Tversky & Kahneman's probability weighting) is monotone only for ``η ≳ 0.279``, hence its
lower bound. The IQN paper's choices are CPW 0.71, Wang ±0.75, Pow −2, CVaR 0.25/0.1 (recalled,
not verified against the paper's text).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import cast

import torch

from rlrobust.core.errors import ConfigError

Distortion = Callable[[torch.Tensor], torch.Tensor]


def neutral(tau: torch.Tensor) -> torch.Tensor:
    """The identity: risk-neutral acting."""
    return tau


def cvar(tau: torch.Tensor, eta: float) -> torch.Tensor:
    """Conditional value at risk: ``β(τ) = η·τ`` (averages the lowest ``η`` of the returns)."""
    return tau * eta


def wang(tau: torch.Tensor, eta: float) -> torch.Tensor:
    """Wang's transform ``β(τ) = Φ(Φ⁻¹(τ) + η)``; ``η < 0`` is risk-averse."""
    distorted: torch.Tensor = torch.special.ndtr(torch.special.ndtri(tau) + eta)
    return distorted


def cpw(tau: torch.Tensor, eta: float) -> torch.Tensor:
    """Cumulative probability weighting ``β(τ) = τ^η / (τ^η + (1 − τ)^η)^{1/η}``."""
    a = tau.pow(eta)
    return a / (a + (1.0 - tau).pow(eta)).pow(1.0 / eta)


def power(tau: torch.Tensor, eta: float) -> torch.Tensor:
    """Power distortion ("pow"): ``τ^{1/(1+η)}`` for ``η ≥ 0`` (seeking), else ``1 − (1−τ)^{1/(1−η)}``."""
    exponent = 1.0 / (1.0 + abs(eta))
    if eta >= 0:
        return tau.pow(exponent)
    return 1.0 - (1.0 - tau).pow(exponent)


#: name -> (function, default parameter, (low, high) valid parameter range, inclusive).
DISTORTIONS: dict[str, tuple[Callable[..., torch.Tensor], float | None, tuple[float, float] | None]] = {
    "neutral": (neutral, None, None),
    "cvar": (cvar, 0.25, (1e-6, 1.0)),
    "wang": (wang, -0.75, (-math.inf, math.inf)),
    "cpw": (cpw, 0.71, (0.28, 10.0)),
    "pow": (power, -2.0, (-math.inf, math.inf)),
}


def _valid() -> str:
    parts = []
    for name, (_, default, bounds) in DISTORTIONS.items():
        parts.append(
            f"{name!r}"
            if bounds is None
            else f"{name!r} (param in [{bounds[0]:g}, {bounds[1]:g}], default {default:g})"
        )
    return ", ".join(parts)


def distortion(name: str, param: float | None = None) -> Distortion:
    """The distortion ``β`` called ``name`` with parameter ``param`` (its default when ``None``).

    Args:
        name: one of ``neutral, cvar, wang, cpw, pow``.
        param: the distortion's ``η``; ignored by ``neutral``.

    Returns:
        A function mapping a tensor of fractions in ``[0, 1]`` to distorted fractions.

    Raises:
        ConfigError: unknown name or parameter out of range (the message lists names and ranges).
    """
    if name not in DISTORTIONS:
        raise ConfigError(f"unknown risk distortion {name!r}; valid: {_valid()}")
    fn, default, bounds = DISTORTIONS[name]
    if bounds is None:
        return fn
    eta = float(param) if param is not None else cast(float, default)  # bounded ones all have a default
    if not (math.isfinite(eta) and bounds[0] <= eta <= bounds[1]):
        raise ConfigError(f"risk distortion {name!r}: parameter {param!r} out of range; valid: {_valid()}")
    return functools.partial(fn, eta=eta)
