"""IQM, stratified-bootstrap intervals and performance profiles (rlrobust.evaluation.stats)."""

from __future__ import annotations

import numpy as np
import pytest

from rlrobust.core.errors import ConfigError
from rlrobust.evaluation.stats import (
    bootstrap_ci,
    format_summaries,
    iqm,
    performance_profile,
    plot_performance_profiles,
    summarize_runs,
)


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    # 1..8: the quartiles cut 1, 2 and 7, 8; the middle half 3..6 has mean 4.5.
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)
    # An outlier moves the mean but not the IQM.
    assert iqm([1, 2, 3, 4, 5, 6, 7, 1000]) == pytest.approx(4.5)
    # A (runs, tasks) matrix is pooled: same answer as its flattened scores.
    assert iqm(np.arange(1, 9).reshape(4, 2)) == pytest.approx(4.5)


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    scores = np.array([3.0, 7.0, 1.0, 8.0, 5.0, 2.0, 6.0, 4.0])
    first = bootstrap_ci(scores, "iqm", seed=3)
    assert bootstrap_ci(scores, "iqm", seed=3) == first  # reproducible with the seed
    assert bootstrap_ci(scores, "iqm", seed=4) != first  # and it is the seed that fixes it
    low, high = first
    assert min(scores) <= low < iqm(scores) < high <= max(scores)
    # Higher confidence widens the interval.
    low99, high99 = bootstrap_ci(scores, "iqm", seed=3, confidence=0.99)
    assert low99 <= low and high99 >= high


def test_bootstrap_is_stratified_by_task() -> None:
    # Task 0 scores are all 0, task 1 all 10: resampling within tasks keeps half of the pooled
    # scores at each value, so the mean is 5 in every resample (pooling the columns would not).
    scores = np.column_stack([np.zeros(6), np.full(6, 10.0)])
    assert bootstrap_ci(scores, "mean", seed=0) == pytest.approx((5.0, 5.0))


def test_summary_reports_iqm_mean_std_and_intervals() -> None:
    summary = summarize_runs([6289.0, 4870.0, 5116.0], seed=0)
    assert summary.runs == 3 and summary.tasks == 1
    assert summary.mean == pytest.approx(5425.0)
    assert summary.std == pytest.approx(np.std([6289.0, 4870.0, 5116.0], ddof=1))
    assert summary.iqm == pytest.approx(summary.mean)  # three runs: 25% trimming cuts nothing
    assert summary.iqm_ci[0] <= summary.iqm <= summary.iqm_ci[1]
    assert summary.to_dict()["iqm_ci"] == list(summary.iqm_ci)
    table = format_summaries({"sac": summary})
    assert "| sac | 3x1 | 5425.0 [" in table


def test_performance_profile_counts_scores_above_each_threshold(tmp_path) -> None:
    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0], [7.0, 8.0]])
    frac, low, high = performance_profile(scores, [0.0, 3.0, 6.0], resamples=500, seed=0)
    np.testing.assert_allclose(frac, [1.0, 5 / 8, 3 / 8])
    assert np.all(low <= frac) and np.all(frac <= high)
    path = plot_performance_profiles(
        {"a": scores, "b": scores + 1.0}, tmp_path / "profile.png", resamples=200
    )
    assert path.stat().st_size > 0


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1.0], "at least 2 runs"),
        ([[[1.0]]], "vector or a"),
        ([1.0, float("nan")], "finite"),
    ],
)
def test_bad_scores_are_refused(bad, message) -> None:
    with pytest.raises(ConfigError, match=message):
        summarize_runs(bad)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown statistic"):
        bootstrap_ci([1.0, 2.0], "median")
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ConfigError, match="same tasks"):
        plot_performance_profiles({"a": np.ones((3, 2)), "b": np.ones((3, 1))}, "unused.png")


def test_write_suite_summary_reports_each_run_and_the_interval_over_runs(tmp_path) -> None:
    import json

    from rlrobust.evaluation import write_suite_summary
    from rlrobust.evaluation.suite import SuiteResult

    def result(offset: float) -> SuiteResult:
        returns = offset + np.arange(4 * 2, dtype=float).reshape(4, 2)  # 4 points x 2 episodes
        return SuiteResult(
            suite="cartpole-2d",
            env_id="CartPole-v1",
            seed=0,
            names=("masspole", "length"),
            grid_shape=(2, 2),
            points=[{"masspole": 0.1, "length": 0.5}] * 4,
            returns=returns,
            lengths=np.ones_like(returns),
        )

    results = [result(0.0), result(10.0), result(20.0)]
    paths = write_suite_summary(results, tmp_path, names=["a", "b", "c"], resamples=200)
    doc = json.loads(paths["json"].read_text())
    assert list(doc["runs"]) == ["a", "b", "c"] and doc["runs"]["b"]["worst"] == 10.5
    worst = doc["over_runs"]["worst"]
    assert worst["runs"] == 3 and worst["mean"] == 10.5 and worst["iqm"] == 10.5  # 3 runs: IQM = mean
    assert worst["iqm_ci"][0] <= 10.5 <= worst["iqm_ci"][1]
    assert "IQM" in paths["markdown"].read_text() and paths["profile"].stat().st_size > 0
    with pytest.raises(ConfigError, match="one name per result"):
        write_suite_summary(results, tmp_path, names=["a"])
