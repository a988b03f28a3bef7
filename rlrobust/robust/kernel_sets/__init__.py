"""Kernel uncertainty sets: exact support functions and unbiased sample estimators.

For a nominal next-state distribution ``p`` (one row ``P̃(·|s, a)``) and a value vector ``v`` the
*support function* of an uncertainty set ``𝒫(p)`` is

    σ(p, v) = min_{q ∈ 𝒫(p)} q·v,

the worst-case expected next value that robust Bellman operators need (the sets of
Wang et al., ICML 2023). Five sets, all (s, a)-rectangular and centred on ``p``:

==============  =======================================  ===========  ======================
name            set                                      radius δ     σ computed by
==============  =======================================  ===========  ======================
contamination   {(1−δ)p + δq : q ∈ Δ}                    [0, 1]       closed form
tv              {q ∈ Δ : ½‖q − p‖₁ ≤ δ}                  [0, 1]       move mass, sorted v
chi2            {q ∈ Δ, q ≪ p : Σ (q−p)²/p ≤ δ}          [0, ∞)       dual, sorted breakpoints
kl              {q ∈ Δ, q ≪ p : KL(q‖p) ≤ δ}             [0, ∞)       dual, safeguarded Newton
wasserstein     {q ∈ Δ : W_l(q, p) ≤ δ}, metric d        [0, ∞)       dual, exact cutting planes
==============  =======================================  ===========  ======================

All exact computations run in float64 torch on whole batches of rows (:meth:`KernelSet.support_torch`);
:meth:`KernelSet.support` is the validated NumPy front end for one row or a stack of rows.

Sample estimators (:meth:`KernelSet.estimate`) are unbiased estimates of σ from next-state samples
of the nominal kernel only: contamination is linear in ``p`` (one sample suffices); the other
sets use the multilevel Monte Carlo (MLMC) estimator of Blanchet & Glynn as in Wang et al. (2023):
draw ``N ~ Geom(Ψ)`` (``P(N = k) = Ψ(1−Ψ)^k``) and ``2^{N+1}`` samples, then

    σ̂ = σ(P̂_1) + [σ(P̂_all) − ½(σ(P̂_even) + σ(P̂_odd))] / P(N),

which telescopes to σ(p) in expectation. ``Ψ`` trades cost for variance: the expected number of
samples ``2Ψ/(2Ψ−1)`` is finite only for ``Ψ > ½``, and the variance stays finite for smooth σ only
for ``Ψ < ¾`` (our KL simulation became heavy-tailed at 0.75). Default Ψ = 0.6
(6 samples per estimate on average). ``N`` is capped at ``max_level`` (default 20, i.e. ≤ 2²¹
samples; the tail ``P(N > 20) ≈ 1e-8`` is folded into the last level), so the estimator is unbiased
for σ of a 2²¹-sample empirical distribution, whose distance to σ(p) is far below sampling noise.

How the estimator is computed (exactly the same numbers as evaluating σ on the four empirical
distributions with :meth:`KernelSet.support_torch`, only faster; ``tests/unit/test_kernel_sets.py``
checks each piece against it):

* Level 0 (a fraction Ψ of the rows) has two samples x, y: the first sample and the halves are point
  masses and the whole is ``½δ_x + ½δ_y``, each with a closed form per set
  (:meth:`KernelSet.support_point`, :meth:`KernelSet.support_pair`).
* Higher levels draw their ``2^{N+1}`` samples per level and turn them into count vectors over the S
  states with one ``bincount``; the three empirical distributions of a row share its ``v``, so
  :meth:`KernelSet.support_shared` does the ``v``-only work (compression to the charged states,
  sorting) once per row, and sends distributions on at most two values to closed forms (χ² any
  weights, KL weights that are multiples of 1/64) before the general solvers.
* The general solvers drop certified rows from the batch as they converge, and reduce over short
  axes by matrix–vector products or over a leading axis (PyTorch's reductions over a short last
  axis are an order of magnitude slower on CPU).
"""

from __future__ import annotations

from rlrobust.core.errors import ConfigError, choices
from rlrobust.robust.kernel_sets.base import KernelSet, ModelError, check_distribution
from rlrobust.robust.kernel_sets.chi_square import ChiSquare
from rlrobust.robust.kernel_sets.contamination import Contamination
from rlrobust.robust.kernel_sets.kullback_leibler import KullbackLeibler
from rlrobust.robust.kernel_sets.mlmc import Sampler, mlmc_counts, mlmc_levels
from rlrobust.robust.kernel_sets.total_variation import TotalVariation
from rlrobust.robust.kernel_sets.wasserstein import Wasserstein

__all__ = [
    "ChiSquare",
    "Contamination",
    "KernelSet",
    "KullbackLeibler",
    "ModelError",
    "Sampler",
    "TotalVariation",
    "Wasserstein",
    "check_distribution",
    "kernel_set_names",
    "make_kernel_set",
    "mlmc_counts",
    "mlmc_levels",
]

_SETS: dict[str, type[KernelSet]] = {
    cls.name: cls for cls in (Contamination, TotalVariation, ChiSquare, KullbackLeibler, Wasserstein)
}


def kernel_set_names() -> list[str]:
    """The valid names for :func:`make_kernel_set`."""
    return sorted(_SETS)


def make_kernel_set(name: str, radius: float, **kwargs: object) -> KernelSet:
    """Build an uncertainty set by name.

    Args:
        name: one of ``contamination``, ``tv``, ``chi2``, ``kl``, ``wasserstein``.
        radius: δ; ``[0, 1]`` for contamination and tv, ``[0, ∞)`` otherwise.
        **kwargs: ``metric`` ((S, S) matrix) and ``order`` (l ≥ 1) for ``wasserstein``.

    Raises:
        ConfigError: unknown name, radius out of range, or options the set does not take.
    """
    if name not in _SETS:
        raise ConfigError(f"unknown uncertainty set {name!r}; valid: {choices(_SETS)}")
    if kwargs and name != "wasserstein":
        raise ConfigError(f"uncertainty set {name!r} takes no options, got {choices(kwargs)}")
    return _SETS[name](radius, **kwargs)
