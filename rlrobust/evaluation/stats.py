"""Aggregate scores over runs the way Agarwal et al. (NeurIPS 2021, "Deep RL at the Edge of the
Statistical Precipice") recommend: interquartile mean (IQM) with a 95% stratified-bootstrap
confidence interval, next to the plain mean ± std, and performance profiles.

Scores are a ``(runs,)`` vector (one task) or a ``(runs, tasks)`` matrix, one row per seed and one
column per task (or suite, or dataset), as in the ``rliable`` package. The bootstrap is
*stratified*: runs are resampled with replacement within each task, never across tasks.

The resampling is ``scipy.stats.bootstrap`` (percentile intervals, as ``rliable`` uses by default),
seeded, so the same scores and seed give the same interval. ``rliable`` itself is not used: it
needs ``arch < 8``, and arch 7.x no longer imports beside pandas 3.

With fewer than four runs per task the 25% trimming removes nothing
(``scipy.stats.trim_mean`` cuts ``floor(0.25 * n)`` scores from each end), so the IQM of three
seeds equals their mean; the interval is then the informative part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlrobust.core.errors import ConfigError

if TYPE_CHECKING:
    from rlrobust.evaluation.reports import SuiteResult

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000


def _scipy_stats() -> Any:
    # Imported on first use: scipy.stats takes seconds to import on a loaded machine, and
    # rlrobust.evaluation is imported by every suite worker, which never needs it.
    from scipy import stats

    return stats


def iqm(scores: Any) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores (runs and tasks pooled)."""
    return float(_scipy_stats().trim_mean(np.asarray(scores, dtype=float), 0.25, axis=None))


def _score_matrix(scores: Any) -> np.ndarray:
    """``(runs, tasks)`` float matrix; a vector is one task. Refuses what cannot be bootstrapped."""
    arr = np.asarray(scores, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigError(f"scores must be a (runs,) vector or a (runs, tasks) matrix, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ConfigError(f"a bootstrap interval needs at least 2 runs per task, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError("scores must be finite (no NaN or inf)")
    return arr


def _pooled(samples: Sequence[np.ndarray]) -> np.ndarray:
    # scipy hands the statistic one (..., runs) array per task; pool the tasks on the last axis.
    return np.concatenate(samples, axis=-1)


def _iqm_stat(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    trimmed: np.ndarray = _scipy_stats().trim_mean(_pooled(samples), 0.25, axis=-1)
    return trimmed


def _mean_stat(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    means: np.ndarray = _pooled(samples).mean(axis=-1)
    return means


STATISTICS: dict[str, Callable[..., np.ndarray]] = {"iqm": _iqm_stat, "mean": _mean_stat}


def bootstrap_ci(
    scores: Any,
    statistic: str = "iqm",
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified-bootstrap percentile interval of ``statistic`` (``"iqm"`` or ``"mean"``).

    Args:
        scores: ``(runs,)`` or ``(runs, tasks)``; runs are resampled within each task.
        statistic: ``"iqm"`` or ``"mean"`` of the pooled scores.
        confidence: the interval's coverage, in (0, 1).
        resamples: bootstrap resamples.
        seed: seeds the resampling; the same inputs and seed give the same interval.

    Returns:
        ``(low, high)``.
    """
    if statistic not in STATISTICS:
        raise ConfigError(f"unknown statistic {statistic!r}; valid: {sorted(STATISTICS)}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ConfigError(f"resamples must be positive, got {resamples}")
    matrix = _score_matrix(scores)
    result = _scipy_stats().bootstrap(
        tuple(matrix.T),
        STATISTICS[statistic],
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class RunSummary:
    """Scores aggregated over runs (seeds): IQM and mean with bootstrap intervals, and the std.

    Attributes:
        runs: runs per task.
        tasks: tasks (columns of the score matrix).
        mean: mean of all scores.
        std: sample standard deviation of all scores (ddof=1).
        iqm: interquartile mean of all scores.
        iqm_ci: ``(low, high)`` stratified-bootstrap interval of the IQM.
        mean_ci: ``(low, high)`` stratified-bootstrap interval of the mean.
        confidence: coverage of both intervals.
    """

    runs: int
    tasks: int
    mean: float
    std: float
    iqm: float
    iqm_ci: tuple[float, float]
    mean_ci: tuple[float, float]
    confidence: float = DEFAULT_CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        """Plain containers (JSON-ready)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def __str__(self) -> str:
        pct = f"{self.confidence:.0%}"
        return (
            f"IQM {self.iqm:.4g} [{self.iqm_ci[0]:.4g}, {self.iqm_ci[1]:.4g}] ({pct} CI), "
            f"mean {self.mean:.4g} ± {self.std:.4g}, {self.runs} runs x {self.tasks} tasks"
        )


def summarize_runs(
    scores: Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RunSummary:
    """IQM and mean, each with a stratified-bootstrap interval, and mean ± std of ``scores``.

    Args:
        scores: ``(runs,)`` or ``(runs, tasks)`` (one row per seed).
        confidence: the intervals' coverage.
        resamples: bootstrap resamples.
        seed: seeds the resampling.
    """
    matrix = _score_matrix(scores)
    options: dict[str, Any] = {"confidence": confidence, "resamples": resamples, "seed": seed}
    return RunSummary(
        runs=matrix.shape[0],
        tasks=matrix.shape[1],
        mean=float(matrix.mean()),
        std=float(matrix.std(ddof=1)),
        iqm=iqm(matrix),
        iqm_ci=bootstrap_ci(matrix, "iqm", **options),
        mean_ci=bootstrap_ci(matrix, "mean", **options),
        confidence=confidence,
    )


def summarize_suite_results(
    results: Sequence[SuiteResult],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, RunSummary]:
    """Aggregate one suite's results over training seeds: a :class:`RunSummary` of the worst-case,
    mean and CVaR return (one :class:`~rlrobust.evaluation.reports.SuiteResult` per seed).

    Example::

        results = [rlrobust.evaluate(f"runs/iqn-seed{s}", "cartpole-2d", episodes=5) for s in range(5)]
        for metric, summary in summarize_suite_results(results).items():
            print(metric, summary)
    """
    if not results:
        raise ConfigError("no suite results to summarize")
    suites = sorted({r.suite for r in results})
    if len(suites) > 1:
        raise ConfigError(f"results of several suites {suites}; summarize one suite at a time")
    options: dict[str, Any] = {"confidence": confidence, "resamples": resamples, "seed": seed}
    return {
        metric: summarize_runs([getattr(r, metric) for r in results], **options)
        for metric in ("worst", "mean", "cvar")
    }


def write_suite_summary(
    results: Sequence[SuiteResult],
    out_dir: str | Path,
    *,
    names: Sequence[str] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the over-seeds summary of one suite's results: ``summary_over_runs.json`` (IQM and
    mean with stratified-bootstrap intervals, mean ± std, of the worst-case, mean and CVaR
    return, plus each run's headline numbers), ``summary_over_runs.md`` (the same as a Markdown
    table) and ``profile_over_runs.png`` (the performance profile of the per-point mean returns,
    one row of points per run).

    Args:
        results: one :class:`~rlrobust.evaluation.reports.SuiteResult` per training seed (run).
        out_dir: folder to write into (created).
        names: a label per result (default ``run0``, ``run1``, ...).
        confidence: the intervals' coverage.
        resamples: bootstrap resamples.
        seed: seeds the resampling.

    Returns:
        ``{"json": ..., "markdown": ..., "profile": ...}`` paths.
    """
    summaries = summarize_suite_results(results, confidence=confidence, resamples=resamples, seed=seed)
    labels = list(names) if names is not None else [f"run{i}" for i in range(len(results))]
    if len(labels) != len(results):
        raise ConfigError(f"{len(labels)} names for {len(results)} results; give one name per result")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "suite": results[0].suite,
        "runs": {n: r.summary() for n, r in zip(labels, results)},
        "over_runs": {metric: s.to_dict() for metric, s in summaries.items()},
    }
    paths = {
        "json": out / "summary_over_runs.json",
        "markdown": out / "summary_over_runs.md",
        "profile": out / "profile_over_runs.png",
    }
    paths["json"].write_text(json.dumps(doc, indent=1))
    paths["markdown"].write_text(
        f"{results[0].suite}: worst case, mean and CVaR return over {len(results)} runs\n\n"
        + format_summaries(summaries)
        + "\n"
    )
    plot_performance_profiles(
        {f"{results[0].suite} points": np.stack([r.point_means for r in results])},
        paths["profile"],
        xlabel="mean return at a suite point",
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )
    return paths


def performance_profile(
    scores: Any,
    taus: Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score distribution: the fraction of (run, task) scores above each threshold in ``taus``.

    Returns:
        ``(fraction, low, high)``, each shaped like ``taus``; ``low``/``high`` are the
        stratified-bootstrap interval of each fraction.
    """
    matrix = _score_matrix(scores)
    thresholds = np.asarray(taus, dtype=float).ravel()

    def fraction_above(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        pooled = _pooled(samples)
        # Outputs first: scipy expects (len(taus), ...) from a vector-valued statistic.
        fractions: np.ndarray = (pooled[None] > thresholds.reshape(-1, *([1] * pooled.ndim))).mean(axis=-1)
        return fractions

    point = fraction_above(*matrix.T[:, None, :])[:, 0]
    result = _scipy_stats().bootstrap(
        tuple(matrix.T),
        fraction_above,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return point, np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def plot_performance_profiles(
    scores: Mapping[str, Any],
    path: str | Path,
    *,
    taus: Any = None,
    xlabel: str = "score",
    title: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Path:
    """Save performance profiles of several methods (one curve with its interval band each) as a PNG.

    Args:
        scores: method name -> ``(runs,)`` or ``(runs, tasks)`` scores on the same tasks.
        path: the PNG to write.
        taus: thresholds; default 101 points spanning all scores.
        xlabel: the score's name on the x axis (e.g. "normalized score").
        title: figure title.
        confidence: coverage of the bands.
        resamples: bootstrap resamples.
        seed: seeds the resampling.
    """
    if not scores:
        raise ConfigError("no methods to plot")
    matrices = {name: _score_matrix(s) for name, s in scores.items()}
    task_counts = {m.shape[1] for m in matrices.values()}
    if len(task_counts) > 1:
        raise ConfigError(f"every method needs scores on the same tasks; task counts {sorted(task_counts)}")
    if taus is None:
        everything = np.concatenate([m.ravel() for m in matrices.values()])
        lo, hi = float(everything.min()), float(everything.max())
        pad = 0.05 * (hi - lo or 1.0)
        taus = np.linspace(lo - pad, hi + pad, 101)
    taus = np.asarray(taus, dtype=float)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, matrix in matrices.items():
        frac, low, high = performance_profile(
            matrix, taus, confidence=confidence, resamples=resamples, seed=seed
        )
        (line,) = ax.plot(taus, frac, label=f"{name} ({matrix.shape[0]} runs)")
        ax.fill_between(taus, low, high, alpha=0.2, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"fraction of runs with score $> \tau$")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    ax.set_title(title or f"performance profiles ({confidence:.0%} stratified-bootstrap bands)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_summaries(summaries: Mapping[str, RunSummary], *, digits: int = 1) -> str:
    """A Markdown table: name, runs, IQM [CI], mean ± std, mean CI."""
    pct = f"{next(iter(summaries.values())).confidence:.0%}" if summaries else "95%"
    lines = [f"| | runs | IQM [{pct} CI] | mean ± std | mean [{pct} CI] |", "|---|---|---|---|---|"]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {s.runs}x{s.tasks} | {s.iqm:.{digits}f} [{s.iqm_ci[0]:.{digits}f}, {s.iqm_ci[1]:.{digits}f}] "
            f"| {s.mean:.{digits}f} ± {s.std:.{digits}f} | [{s.mean_ci[0]:.{digits}f}, {s.mean_ci[1]:.{digits}f}] |"
        )
    return "\n".join(lines)
