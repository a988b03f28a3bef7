"""Risk distortions (Dabney et al. 2018, IQN §3.1): valid CDFs, identities, closed forms, factory errors."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.core.risk import distortion

GRID = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)

CASES = [
    ("neutral", None),
    ("cvar", 0.1),
    ("cvar", 0.25),
    ("cvar", 1.0),
    ("wang", -0.75),
    ("wang", 0.75),
    ("wang", -3.0),
    ("cpw", 0.28),
    ("cpw", 0.71),
    ("cpw", 1.0),
    ("cpw", 3.0),
    ("pow", -2.0),
    ("pow", 2.0),
    ("pow", 0.0),
]


@pytest.mark.parametrize("name, eta", CASES)
def test_each_distortion_is_a_cdf_on_unit_interval(name, eta):
    beta = distortion(name, eta)(GRID)
    assert beta[0].item() == pytest.approx(0.0, abs=1e-12)
    # CVaR maps [0, 1] onto [0, η]: it reaches 1 only at η = 1 (the quantiles it averages).
    assert beta[-1].item() == pytest.approx(eta if name == "cvar" else 1.0, abs=1e-12)
    assert torch.all(torch.diff(beta) >= -1e-12), f"{name}({eta}) is not monotone"
    assert torch.all((beta >= 0) & (beta <= 1))


@pytest.mark.parametrize(
    "name, eta", [("cvar", 1.0), ("cpw", 1.0), ("wang", 0.0), ("pow", 0.0), ("neutral", None)]
)
def test_identity_parameters(name, eta):
    inner = GRID[1:-1]  # Φ⁻¹ is infinite at the ends
    assert torch.allclose(distortion(name, eta)(inner), inner, atol=1e-12)


def test_known_values():
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    assert distortion("cvar", 0.25)(t).tolist() == pytest.approx([0.05, 0.125, 0.2])
    nd = NormalDist()
    assert distortion("wang", -0.75)(t).tolist() == pytest.approx(
        [nd.cdf(nd.inv_cdf(x) - 0.75) for x in (0.2, 0.5, 0.8)], abs=1e-9
    )
    x = np.array([0.2, 0.5, 0.8])
    assert distortion("cpw", 0.71)(t).numpy() == pytest.approx(
        x**0.71 / (x**0.71 + (1 - x) ** 0.71) ** (1 / 0.71)
    )
    assert distortion("pow", -2.0)(t).numpy() == pytest.approx(1 - (1 - x) ** (1 / 3))
    assert distortion("pow", 2.0)(t).numpy() == pytest.approx(x ** (1 / 3))


def _distorted_mean(name: str, eta: float, mu: float, sigma: float, n: int) -> float:
    """E_u[F⁻¹(β(u))] for N(μ, σ²) by the midpoint rule over u."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    nd = NormalDist(mu, sigma)
    tau = distortion(name, eta)(u).numpy()
    return float(np.mean([nd.inv_cdf(min(max(t, 1e-300), 1 - 1e-16)) for t in tau]))


@pytest.mark.parametrize("eta", [0.1, 0.25, 0.5])
def test_gaussian_cvar_closed_form(eta):
    mu, sigma = 1.5, 2.0
    nd = NormalDist()
    closed = mu - sigma * nd.pdf(nd.inv_cdf(eta)) / eta
    assert _distorted_mean("cvar", eta, mu, sigma, 50_000) == pytest.approx(closed, abs=2e-3)


def test_gaussian_wang_shifts_the_mean():
    # F⁻¹(Φ(Φ⁻¹(u) + η)) = μ + σ(Φ⁻¹(u) + η), whose mean is μ + ση.
    assert _distorted_mean("wang", -0.75, 1.0, 2.0, 50_000) == pytest.approx(1.0 - 1.5, abs=2e-3)


def test_factory_defaults_and_errors():
    t = torch.tensor([0.5])
    assert distortion("cvar")(t).item() == pytest.approx(0.125)  # default η = 0.25
    with pytest.raises(ConfigError, match=r"unknown risk distortion 'cvaR'") as err:
        distortion("cvaR", 0.2)
    assert all(f"'{name}'" in str(err.value) for name in ("neutral", "cvar", "wang", "cpw", "pow"))
    with pytest.raises(ConfigError, match=r"'cvar'.*out of range.*\[1e-06, 1\]"):
        distortion("cvar", 1.5)
    with pytest.raises(ConfigError, match=r"'cpw'.*out of range.*0\.28"):
        distortion("cpw", 0.1)
    with pytest.raises(ConfigError, match="out of range"):
        distortion("wang", float("nan"))
