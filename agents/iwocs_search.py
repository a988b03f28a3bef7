"""IWOCS's worst-case search: the parameter point of a box where a policy's return is lowest.

Step 3 of IWOCS (Zouitine et al., arXiv 2410.06212, Algorithm 1): ``T_{i+1} = argmin_T V^{π_i}_T``,
estimated by Monte-Carlo returns. Two searches over a box ``{name: (low, high)}``:

* :func:`grid_search` — every point of a regular grid, both bounds included (the paper's IWOCS*);
* :func:`cmaes_search` — CMA-ES from the maintained ``cmaes`` package (CyberAgentAILab), run in
  the box normalised to ``[0, 1]^d`` with the paper's settings (6 generations, population 100,
  mean 0.5, std 0.5). The answer is the lowest point ever evaluated, not the final mean.

``evaluate(params)`` returns a mean return, or ``(mean, std)`` over its episodes; the spread is
kept with each point. Seeding: CMA-ES takes an explicit seed; the estimates themselves are seeded
by the caller (the trainer's evaluation uses the same reset seeds at every point: common random
numbers, so differences between points come from the physics).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rlrobust.core.errors import ConfigError

Params = dict[str, float]
Evaluate = Callable[[Params], "float | tuple[float, float]"]
SEARCHES = ("grid", "cmaes")


@dataclass
class SearchResult:
    """The worst point found and every estimate made on the way.

    Attributes:
        point: ``{name: value}`` of the lowest estimated return.
        value: its Monte-Carlo mean return. std: its spread over episodes (NaN if not reported).
        evaluations: ``(point, mean, std)`` of every evaluated point, in order.
        method: ``"grid"`` or ``"cmaes"``.
    """

    point: Params
    value: float
    std: float
    evaluations: list[tuple[Params, float, float]] = field(default_factory=list)
    method: str = ""


def _estimate(evaluate: Evaluate, params: Params) -> tuple[float, float]:
    out = evaluate(params)
    mean, std = out if isinstance(out, tuple) else (out, math.nan)
    if not math.isfinite(float(mean)):
        raise ValueError(f"the return estimate at {params} is not finite ({mean})")
    return float(mean), float(std)


def _check_bounds(bounds: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    box = {str(k): (float(v[0]), float(v[1])) for k, v in bounds.items()}
    if not box or any(not lo < hi for lo, hi in box.values()):
        raise ConfigError(
            f"the search box must be a non-empty {{name: (low, high)}} with low < high, got {bounds!r}"
        )
    return box


def normalize(point: Mapping[str, float], bounds: Mapping[str, Sequence[float]]) -> np.ndarray:
    """``point`` mapped to ``[0, 1]^d`` (dimension order of ``bounds``)."""
    return np.array([(point[k] - lo) / (hi - lo) for k, (lo, hi) in bounds.items()])


def denormalize(x: np.ndarray, bounds: Mapping[str, Sequence[float]]) -> Params:
    """Inverse of :func:`normalize`, clipped into the box."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return {k: float(lo + xi * (hi - lo)) for xi, (k, (lo, hi)) in zip(x, bounds.items())}


def _result(evals: list[tuple[Params, float, float]], method: str) -> SearchResult:
    point, value, std = min(evals, key=lambda e: e[1])
    return SearchResult(dict(point), value, std, evals, method)


def grid_search(
    evaluate: Evaluate, bounds: Mapping[str, Sequence[float]], points_per_dim: int = 10
) -> SearchResult:
    """Evaluate every point of a ``points_per_dim^d`` grid (both bounds included); return the worst."""
    box = _check_bounds(bounds)
    if points_per_dim < 2:
        raise ConfigError(
            f"grid_points_per_dim must be >= 2 so both bounds are searched, got {points_per_dim}"
        )
    axes = [np.linspace(lo, hi, points_per_dim) for lo, hi in box.values()]
    evals = []
    for values in itertools.product(*axes):
        point = dict(zip(box, map(float, values)))
        evals.append((point, *_estimate(evaluate, point)))
    return _result(evals, "grid")


def cmaes_search(
    evaluate: Evaluate,
    bounds: Mapping[str, Sequence[float]],
    *,
    generations: int = 6,
    population: int = 100,
    mean: float = 0.5,
    sigma: float = 0.5,
    seed: int = 0,
) -> SearchResult:
    """CMA-ES (``cmaes.CMA``) minimising the return over the normalised box; returns the lowest point seen."""
    from cmaes import CMA

    box = _check_bounds(bounds)
    if generations < 1 or population < 2 or not 0.0 <= mean <= 1.0 or sigma <= 0:
        raise ConfigError(
            f"CMA-ES needs generations >= 1, population >= 2, mean in [0, 1] and sigma > 0; got "
            f"{generations}, {population}, {mean}, {sigma}"
        )
    d = len(box)
    optimizer = CMA(
        mean=np.full(d, float(mean)),
        sigma=float(sigma),
        bounds=np.tile([0.0, 1.0], (d, 1)),
        seed=int(seed),
        population_size=int(population),
    )
    evals = []
    for _ in range(generations):
        told = []
        for _ in range(optimizer.population_size):
            x = optimizer.ask()
            point = denormalize(x, box)
            mean_return, std = _estimate(evaluate, point)
            evals.append((point, mean_return, std))
            told.append((x, mean_return))
        optimizer.tell(told)
    return _result(evals, "cmaes")


def worst_case_search(
    evaluate: Evaluate,
    bounds: Mapping[str, Sequence[float]],
    method: str = "cmaes",
    *,
    points_per_dim: int = 10,
    generations: int = 6,
    population: int = 100,
    mean: float = 0.5,
    sigma: float = 0.5,
    seed: int = 0,
) -> SearchResult:
    """Dispatch to :func:`grid_search` (``"grid"``, IWOCS*) or :func:`cmaes_search` (``"cmaes"``)."""
    if method == "grid":
        return grid_search(evaluate, bounds, points_per_dim)
    if method == "cmaes":
        return cmaes_search(
            evaluate,
            bounds,
            generations=generations,
            population=population,
            mean=mean,
            sigma=sigma,
            seed=seed,
        )
    raise ConfigError(f"unknown worst-case search {method!r}; valid: {SEARCHES}")
