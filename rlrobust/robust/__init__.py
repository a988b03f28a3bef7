"""Robust-MDP building blocks: kernel uncertainty sets and exact robust dynamic programming.

* :func:`make_kernel_set` — contamination, TV, χ², KL and Wasserstein sets with exact support
  functions ``σ(p, v) = min_{q ∈ 𝒫(p)} q·v`` and unbiased (MLMC) sample estimators.
* :func:`robust_value_iteration` (discounted), :func:`robust_relative_value_iteration` (average
  reward), :func:`robust_finite_horizon` (episodic; evaluation of a given policy too) — the
  ground truth the tabular agents are tested against.
"""

from rlrobust.robust.dynamic_programming import (
    robust_bellman_q,
    robust_finite_horizon,
    robust_relative_value_iteration,
    robust_value_iteration,
)
from rlrobust.robust.kernel_sets import KernelSet, ModelError, kernel_set_names, make_kernel_set

__all__ = [
    "KernelSet",
    "ModelError",
    "kernel_set_names",
    "make_kernel_set",
    "robust_bellman_q",
    "robust_finite_horizon",
    "robust_relative_value_iteration",
    "robust_value_iteration",
]
