"""benchmarks/bench_offline.py: the experiment's resume/skip logic, its report and its bad-input messages,
on a tiny PD-controller dataset (the learning experiment itself is a benchmark, not a test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import record_pd_dataset

from rlrobust.core.errors import ConfigError
from rlrobust.core.logging import read_metrics
from rlrobust.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_offline  # noqa: E402

TINY = dict(
    env="Pendulum-v1",
    seeds=(0,),
    attacks=("rewards",),
    agents=("bc", "riql"),
    eval_interval=5,
    eval_episodes=1,
    final_eval_episodes=1,
    workers=1,
)


def test_resumes_unfinished_runs_and_skips_finished_ones(tmp_path, capsys):
    record_pd_dataset("test/pendulum/pd-v0")
    kw = dict(TINY, dataset="test/pendulum/pd-v0", workdir=str(tmp_path / "runs"), out=str(tmp_path / "out"))
    first = bench_offline.offline(gradient_steps=5, **kw)
    assert first["skipped"] == [] and first["finished"] == 3  # bc, riql clean; riql on 30% rewards
    assert "raw returns" in first["note"]  # no reference scores anywhere: it says so
    second = bench_offline.offline(gradient_steps=10, **kw)  # a longer budget: every run resumes at step 5
    assert second["skipped"] == []
    for run in ("bc-clean-s0", "riql-clean-s0", "riql-rewards-s0"):
        steps = [r["step"] for r in read_metrics(tmp_path / "runs" / run) if "eval/return_mean" in r]
        assert steps == [5, 10], steps  # one metrics row per step (periodic and final evaluation merged)
    assert capsys.readouterr().out.count("resumed from") == 3
    third = bench_offline.offline(gradient_steps=10, **kw)
    assert len(third["skipped"]) == 3
    assert "skipping 3 finished run(s)" in capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["summary"]) == {"bc/clean", "riql/clean", "riql/rewards"}
    curve = results["runs"]["bc/clean"]["seeds"]["0"]["curve"]  # 2 evaluations: fewer than the window
    assert results["summary"]["bc/clean"]["late_mean"] == pytest.approx(np.mean(list(curve.values())))
    assert results["runs"]["riql/rewards"]["kwargs"] == {"beta": 1.0, **bench_offline.RIQL_HOPPER["rewards"]}
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    assert "riql | rewards" in (tmp_path / "out" / "table.md").read_text()
    # A later sitting on another machine: the run dirs are gone, the committed results.json stays.
    import shutil

    shutil.rmtree(tmp_path / "runs" / "bc-clean-s0")
    fourth = bench_offline.offline(gradient_steps=10, report_only=True, **kw)
    assert (
        fourth["runs"]["bc/clean"]["seeds"][0]["final"] == results["runs"]["bc/clean"]["seeds"]["0"]["final"]
    )
    assert fourth["runs"]["bc/clean"]["seeds"][0]["source"] == "recorded in an earlier results.json"
    assert fourth["finished"] == 3
    assert fourth["dataset"]["fingerprint"] == results["dataset"]["fingerprint"]
    legacy = json.loads((tmp_path / "out" / "results.json").read_text())
    # A report from before data identities: matched on the data's mean score.
    for entry in legacy["runs"].values():
        del entry["data_identity"]
    (tmp_path / "out" / "results.json").write_text(json.dumps(legacy))
    fifth = bench_offline.offline(gradient_steps=10, report_only=True, **kw)
    assert fifth["runs"]["bc/clean"]["seeds"][0]["source"] == "recorded in an earlier results.json"
    other_budget = bench_offline.offline(gradient_steps=20, report_only=True, **kw)
    assert "bc/clean" not in other_budget["runs"]  # a result of another budget is never merged


def test_runs_and_results_of_other_data_under_the_same_id_are_refused(tmp_path, capsys):
    """The dataset rebuilt under the same id (e.g. on another machine) is other data: its run dirs
    are refused before any work, and an earlier report's results are not merged."""
    record_pd_dataset("test/pendulum/rebuilt-v0", overwrite=True)
    kw = dict(
        TINY, dataset="test/pendulum/rebuilt-v0", workdir=str(tmp_path / "runs"), out=str(tmp_path / "out")
    )
    kw["agents"], kw["attacks"] = ("bc",), ()
    bench_offline.offline(gradient_steps=5, **kw)
    assert json.loads((tmp_path / "runs" / "bc-clean-s0" / "data.json").read_text())["attack"] == "clean"
    record_pd_dataset("test/pendulum/rebuilt-v0", episodes=3, overwrite=True)  # same id, other data
    with pytest.raises(ConfigError, match="1 run dir\\(s\\) trained on other data: .*bc-clean-s0"):
        bench_offline.offline(gradient_steps=10, **kw)
    assert not (tmp_path / "runs" / "bc-clean-s0" / "checkpoints" / "step_000000010").exists()
    import shutil

    shutil.rmtree(tmp_path / "runs")  # another machine: no run dirs, only the earlier results.json
    report = bench_offline.offline(gradient_steps=5, report_only=True, **kw)
    assert report["runs"] == {}
    assert "not merging bc/clean" in capsys.readouterr().out


def test_corruption_settings_count_for_corrupted_runs_only_and_old_run_dirs_are_named(tmp_path, capsys):
    record_pd_dataset("test/pendulum/pd-v0")
    kw = dict(TINY, dataset="test/pendulum/pd-v0", workdir=str(tmp_path / "runs"), out=str(tmp_path / "out"))
    kw["agents"] = ("bc", "riql")
    bench_offline.offline(gradient_steps=5, **kw)  # bc and riql clean, riql on 30 % rewards
    with pytest.raises(
        ConfigError,
        match="1 run dir\\(s\\) trained on other data: .*riql-rewards-s0 \\(rate: 0.3 there, 0.2 now",
    ):
        bench_offline.offline(gradient_steps=5, rate=0.2, **kw)
    clean = bench_offline.offline(gradient_steps=5, rate=0.2, report_only=True, **{**kw, "attacks": ()})
    assert set(clean["runs"]) == {"bc/clean", "riql/clean"}  # clean data ignores the corruption settings
    (tmp_path / "runs" / "bc-clean-s0" / "data.json").unlink()  # a run dir from before the record
    again = bench_offline.offline(gradient_steps=10, **{**kw, "attacks": (), "agents": ("bc",)})
    assert "1 run dir(s) predate data.json, their data is not checked" in capsys.readouterr().out
    assert again["runs"]["bc/clean"]["seeds"][0]["final"] is not None
    assert not (tmp_path / "runs" / "bc-clean-s0" / "data.json").exists()  # not stamped after the fact
    assert again["runs"]["bc/clean"]["data_identity"] is None  # and reported as unverified


def test_bad_attack_and_agent_names_list_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: .*'dynamics'.*'observations'"):
        bench_offline.offline(dataset="never/loaded-v0", attacks=("reward",), workdir=str(tmp_path))
    with pytest.raises(ConfigError, match="valid: .*'bc'"):
        bench_offline.configurations(agents=("cql",))


def test_says_which_reference_scores_it_used():
    n = 4
    data = Dataset(
        np.zeros((n, 11), np.float32),
        np.zeros((n, 3), np.float32),
        np.zeros(n, np.float32),
        np.zeros((n, 11), np.float32),
        np.zeros(n, bool),
        np.ones(n, bool),
        metadata={},
    )
    ref, note = bench_offline.score_reference(data, "Hopper-v5")
    assert ref["source"] == "table['hopper']" and "lacks reference scores" in note and "-20.27" in note
    data.metadata.update(ref_min_score=0.0, ref_max_score=100.0)
    ref, note = bench_offline.score_reference(data, "Hopper-v5")
    assert ref["source"] == "dataset metadata" and "own reference scores" in note


def test_iql_vs_riql_profile_and_intervals_from_two_seeds(tmp_path):
    runs = {
        f"{agent}/{data}": {
            "agent": agent,
            "data": data,
            "seeds": {s: {"final": base + s} for s in (0, 1)},
        }
        for agent, base in (("iql", 40.0), ("riql", 60.0))
        for data in ("clean", "rewards")
    }
    bench_offline._plot_profiles(runs, tmp_path / "profile.png", True)
    assert (tmp_path / "profile.png").stat().st_size > 0
    bench_offline._plot_profiles(
        {k: v for k, v in runs.items() if k != "riql/rewards"}, tmp_path / "p2.png", True
    )
    assert (tmp_path / "p2.png").exists()  # the profile covers the datasets both agents finished (clean)
    from rlrobust.evaluation.stats import summarize_runs

    summary = {"riql/clean": {"mean": 60.5, "std": 0.5, "n": 2, "seed0": 60.0, "held_out_mean": 61.0}}
    summary["riql/clean"]["intervals"] = summarize_runs([60.0, 61.0]).to_dict()
    table = bench_offline._table(summary, {}, 50.0, "note", {"gradient_steps": 10, "finished": 2, "jobs": 2})
    assert "| riql | clean | 60.0 | 61.0 | 60.5 ± 0.5 | 60.5 [60.0, 61.0] | 2 | – |" in table
    summary["riql/clean"] |= {"late_mean": 55.26, "late_std": 1.0}
    table = bench_offline._table(summary, {}, 50.0, "note", {"gradient_steps": 10, "finished": 2, "jobs": 2})
    assert "| 2 | 55.3 ± 1.0 |" in table


def test_late_score_averages_the_last_evaluations():
    curve = {10 * k: float(k) for k in range(1, 11)}  # steps 10..100, scores 1..10
    assert bench_offline.late_score(curve) == 8.0  # mean of 6..10
    assert bench_offline.late_score({5: 3.0, 1: 1.0}) == 2.0  # fewer points than the window
    assert np.isnan(bench_offline.late_score({}))


def test_robustness_target_needs_a_clean_riql_that_learned():
    summary = {
        "iql/clean": {"mean": 70.0},
        "iql/rewards": {"mean": 50.0},
        "riql/clean": {"mean": 2.0},
        "riql/rewards": {"mean": 1.9},
    }
    vacuous = bench_offline.evaluate_targets(summary, behaviour_score=40.0)["rewards"]
    assert vacuous["kept_80"] and vacuous["half_of_iql_drop"] and not vacuous["riql_clean_learned"]
    assert not vacuous["met"]
    summary["riql/clean"]["mean"], summary["riql/rewards"]["mean"] = 60.0, 55.0
    assert bench_offline.evaluate_targets(summary, behaviour_score=40.0)["rewards"]["met"]


def test_replay_dataset_is_rebuilt_over_an_existing_one(tmp_path):
    import rlrobust

    run = tmp_path / "behaviour"
    rlrobust.train(
        "dsac",
        "pendulum",
        total_steps=200,
        seed=0,
        run_dir=run,
        agent_kwargs={"learning_starts": 100, "net_arch": [16, 16]},
        eval_interval=0,
        checkpoint_interval=200,
        progress=False,
    )
    checkpoint = {"checkpoint": str(next((run / "checkpoints").glob("step_*"))), "step": 200}
    first = bench_offline.record_replay(checkpoint, "test/pendulum/replay-v0", env_id="Pendulum-v1")
    second = bench_offline.record_replay(checkpoint, "test/pendulum/replay-v0", env_id="Pendulum-v1")
    assert len(first) == len(second) == 200
    np.testing.assert_array_equal(first.observations, second.observations)
