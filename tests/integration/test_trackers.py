"""Experiment trackers (logger=wandb | mlflow): offline/local runs written into a temp folder, the
same scalars as TensorBoard, the config and the report files; a missing extra is named."""

from __future__ import annotations

import json
import sys

import pytest

import rlrobust
from rlrobust.core.errors import ConfigError, MissingDependencyError
from rlrobust.core.logging import read_metrics
from rlrobust.core.runner import compose_train_config

TINY = {
    "agent_kwargs": {"learning_starts": 100, "net_arch": [16], "buffer_size": 1000},
    "progress": False,
    "log_interval": 100,
    "checkpoint_interval": 0,
    "final_eval_episodes": 1,
}


def _train(run_dir, logger, total_steps=200):
    return rlrobust.train(
        "iqn", "CartPole-v1", total_steps=total_steps, seed=0, run_dir=run_dir, logger=logger, **TINY
    )


def test_logger_group_composes_and_tensorboard_stays_the_default():
    assert compose_train_config(agent="iqn").logger.name == "tensorboard"
    cfg = compose_train_config(agent="iqn", logger={"name": "wandb", "project": "p"})
    assert (cfg.logger.name, cfg.logger.project, cfg.logger.mode) == ("wandb", "p", "offline")
    with pytest.raises(ConfigError, match="unknown logger 'comet'.*'mlflow'"):
        compose_train_config(agent="iqn", logger="comet")
    with pytest.raises(ConfigError, match="option of logger 'mlflow'.*'experiment'"):
        compose_train_config(agent="iqn", logger={"name": "mlflow", "experiment_name": "x"})


@pytest.mark.parametrize("extra", ["wandb", "mlflow"])
def test_a_missing_tracker_names_its_extra_before_training(tmp_path, monkeypatch, extra):
    monkeypatch.setitem(sys.modules, extra, None)  # import now raises ImportError
    with pytest.raises(MissingDependencyError, match=rf"pip install 'rlrobust\[{extra}\]'"):
        _train(tmp_path / "run", extra)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_mlflow_file_store_gets_scalars_config_and_reports_and_a_resume_continues_it(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    _train(run_dir, "mlflow")
    run_id = json.loads((run_dir / "tracker.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["agent.learning_starts"] == "100"
    # Every scalar of metrics.jsonl is in MLflow at the same step.
    rows = read_metrics(run_dir)
    for key in ("train/loss/critic", "eval/return_mean"):
        logged = {m.step: m.value for m in client.get_metric_history(run_id, key)}
        expected = {r["step"]: r[key] for r in rows if key in r}
        assert expected and logged == pytest.approx(expected), key
    assert client.get_metric_history(run_id, "train/episode_return")  # per-episode, as in TensorBoard
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "config.json", "final_evaluation.json"} <= artifacts

    _train(run_dir, "mlflow", total_steps=300)  # resume: the same MLflow run goes on
    assert json.loads((run_dir / "tracker.json").read_text())["mlflow"] == run_id
    steps = [m.step for m in client.get_metric_history(run_id, "eval/return_mean")]
    assert sorted(steps) == [200, 300]


def test_wandb_offline_run_is_written_into_the_run_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    _train(run_dir, {"name": "wandb", "project": "rlrobust-test"})
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, "W&B offline mode writes one local run, no network"
    run_id = json.loads((run_dir / "tracker.json").read_text())["wandb"]
    records = (offline[0] / f"run-{run_id}.wandb").read_bytes()
    # The run's record log holds the scalars' names and the config's keys.
    for name in (b"train/loss/critic", b"eval/return_mean", b"train/episode_return", b"learning_starts"):
        assert name in records, name
    files = offline[0] / "files"
    assert (files / "final_evaluation.json").exists() and (files / "config.yaml").exists()
