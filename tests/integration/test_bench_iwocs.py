"""The IWOCS benchmark's bookkeeping (benchmarks/bench_iwocs.py) on a tiny budget: finished runs
are skipped, an interrupted run resumes from its checkpoint, the summary is recomputed from the
stored results, and other settings on the same root are refused."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from rlrobust.agents.dsac import DSAC
from rlrobust.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))  # the benchmarks' shared timing helper
_spec = importlib.util.spec_from_file_location("bench_iwocs", REPO / "benchmarks" / "bench_iwocs.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_iwocs"] = bench  # its dataclass looks its module up there
_spec.loader.exec_module(bench)

TINY_DSAC = {
    "learning_starts": 50,
    "net_arch": [16, 16],
    "activation": "relu",
    "batch_size": 16,
    "learning_rate": 1e-3,
    "actor_learning_rate": 1e-3,
    "critic_learning_rate": 1e-3,
    "alpha_learning_rate": 1e-3,
    "ent_coef": "auto_1.0",
}
TINY_IWOCS = {"search": "grid", "grid_points_per_dim": 2, "eval_episodes": 1, "rho_candidates": [1.0]}


def tiny(steps: int = 400) -> bench.BenchSettings:
    return bench.BenchSettings(
        "pendulum-1d",
        steps,
        [0],
        points_per_dim=2,
        episodes=1,
        nominal_eval_interval=0,
        dsac=dict(TINY_DSAC),
        iwocs=dict(TINY_IWOCS),
    )


def test_iwocs_inner_learner_gets_the_baselines_dsac_config():
    import rlrobust
    from rlrobust.envs import make_env

    settings = tiny()
    env = make_env("Pendulum-v1", perturbation={"kind": "static", "suite": "pendulum-1d"})
    spaces = env.observation_space, env.action_space
    env.close()
    agents = {}
    for method in ("dsac_nominal", "iwocs"):
        name, _, kwargs = settings.method(method)
        agents[method] = rlrobust.make_agent(name, *spaces, seed=0, **kwargs)
    assert agents["iwocs"].dsac_config == agents["dsac_nominal"].config
    schedule = settings.schedule()  # 40% DR (warm-up included), then 3 x 20%: exactly the budget
    assert TINY_DSAC["learning_starts"] + schedule["dr_steps"] + 3 * schedule["steps_per_iteration"] == 400


def test_finished_runs_are_skipped_and_an_interrupted_run_resumes(tmp_path, monkeypatch, capsys):
    settings, root = tiny(), tmp_path / "bench"
    original = DSAC.update

    def interrupted(self, batch):  # a kill after the checkpoint at step 200
        if self.num_updates == 200:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(DSAC, "update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench.bench_iwocs(settings, root, methods=("dsac_nominal",), checkpoint_interval=100)
    run = bench.run_dir(root, "dsac_nominal", 0)
    assert (run / "checkpoints").is_dir() and not (run / "result.json").exists()
    monkeypatch.setattr(DSAC, "update", original)
    capsys.readouterr()

    summary = bench.bench_iwocs(settings, root, methods=("dsac_nominal",), checkpoint_interval=100)
    assert "at step 200" in capsys.readouterr().out  # the trainer's "resumed from <checkpoint> at step 200"
    assert [r["method"] for r in summary["rows"]] == ["dsac_nominal"]
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 400 and result["worst"] <= result["cvar"] <= result["mean"]

    stamp = (run / "result.json").stat().st_mtime_ns
    summary = bench.bench_iwocs(settings, root, methods=("dsac_nominal", "iwocs"), checkpoint_interval=100)
    assert "skip dsac_nominal seed 0: finished" in capsys.readouterr().out
    assert (run / "result.json").stat().st_mtime_ns == stamp
    assert list(summary["per_method"]) == ["dsac_nominal", "iwocs"]
    iwocs = json.loads((bench.run_dir(root, "iwocs", 0) / "result.json").read_text())
    assert len(iwocs["iwocs_history"]) >= 1 and 0.0 <= iwocs["acting"]["fallback"] <= 1.0
    for m in ("dsac_nominal", "iwocs"):
        assert (root / f"heatmap_{m}.png").stat().st_size > 0
    table = (root / "table.md").read_text()
    assert table.count("| iwocs | 0 |") == 1 and "mean of 1" in table

    with pytest.raises(ConfigError, match="steps: 400 there, 800 now"):
        bench.bench_iwocs(tiny(800), root, methods=("dsac_nominal",))


def test_summary_over_two_seeds_has_intervals_and_a_performance_profile(tmp_path):
    import numpy as np

    from rlrobust.evaluation.reports import SuiteResult, write_json

    points = [{"mass": m} for m in (0.5, 1.0, 1.5)]
    for m_index, method in enumerate(("dsac_nominal", "iwocs")):
        for seed in (0, 1):
            returns = np.full((3, 2), 100.0 * (m_index + 1) + seed)
            ev = SuiteResult(
                "toy-1d", "Pendulum-v1", ("mass",), points, returns, np.ones((3, 2)), grid_shape=(3,)
            )
            directory = bench.run_dir(tmp_path, method, seed)
            directory.mkdir(parents=True)
            write_json(ev, directory / "evaluation.json")
            row = {"method": method, "seed": seed, "worst": ev.worst, "mean": ev.mean, "cvar": ev.cvar}
            (directory / "result.json").write_text(json.dumps({**row, "worst_point": ev.worst_point}))
    summary = bench.summarize(tmp_path)
    iwocs = summary["per_method"]["iwocs"]
    assert iwocs["mean"] == pytest.approx(200.5)
    assert iwocs["intervals"]["worst"]["runs"] == 2
    low, high = iwocs["intervals"]["mean"]["mean_ci"]
    assert 200.0 <= low <= 200.5 <= high <= 201.0  # the bootstrap of {200, 201}
    assert (tmp_path / "profile.png").stat().st_size > 0
    assert "IQM [95% CI]" in (tmp_path / "table.md").read_text()
