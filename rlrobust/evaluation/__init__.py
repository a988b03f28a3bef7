"""Robustness evaluation over perturbation suites (:func:`evaluate`, :class:`SuiteResult`) and its reports."""

from __future__ import annotations

from rlrobust.evaluation.suite import SuiteResult, evaluate

__all__ = ["SuiteResult", "evaluate"]
