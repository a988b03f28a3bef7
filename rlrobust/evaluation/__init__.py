"""Robustness evaluation over perturbation suites (:func:`evaluate`, :class:`SuiteResult`), its
reports, and aggregation over seeds with intervals (:mod:`rlrobust.evaluation.stats`)."""

from __future__ import annotations

from rlrobust.evaluation.reports import SuiteResult
from rlrobust.evaluation.stats import (
    RunSummary,
    bootstrap_ci,
    iqm,
    plot_performance_profiles,
    summarize_runs,
    summarize_suite_results,
    write_suite_summary,
)
from rlrobust.evaluation.suite import evaluate

__all__ = [
    "RunSummary",
    "SuiteResult",
    "bootstrap_ci",
    "evaluate",
    "iqm",
    "plot_performance_profiles",
    "summarize_runs",
    "summarize_suite_results",
    "write_suite_summary",
]
