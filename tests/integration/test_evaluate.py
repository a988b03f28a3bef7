"""rlrobust.evaluate and scripts/evaluate.py on the fast cartpole-2d / pendulum-1d suites."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlrobust
from rlrobust.core.errors import PerturbationError
from rlrobust.core.seeding import spawn_seeds
from rlrobust.evaluation import SuiteResult
from rlrobust.interop.policies import LinearPolicy

REPO = Path(rlrobust.__file__).resolve().parent.parent
# push the cart towards the side the pole falls to: a = 1 iff theta + theta_dot > 0
BALANCE = LinearPolicy([[0, 0, -1, -1], [0, 0, 1, 1]], [0, 0], discrete=True)


def reference_returns(policy, points, episodes, seed=0):
    """Independent loop: a fresh CartPole per point, attributes written by hand."""
    seeds = spawn_seeds(seed, episodes)
    out = []
    for point in points:
        env = gym.make("CartPole-v1")
        base = env.unwrapped
        for name, value in point.items():
            setattr(base, name, value)
        base.total_mass = base.masspole + base.masscart
        base.polemass_length = base.masspole * base.length
        returns = []
        for s in seeds:
            obs, _ = env.reset(seed=s)
            total, done = 0.0, False
            while not done:
                obs, r, term, trunc, _ = env.step(policy(obs))
                total += r
                done = term or trunc
            returns.append(total)
        out.append(returns)
    return np.array(out)


def test_callable_policy_on_a_tiny_grid_matches_an_independent_loop():
    result = rlrobust.evaluate(BALANCE, "cartpole-2d", episodes=2, points_per_dim=2, workers=1)
    points = [{"masspole": m, "length": x} for m in (0.05, 1.0) for x in (0.25, 1.5)]
    assert result.points == points
    np.testing.assert_array_equal(result.returns, reference_returns(BALANCE, points, 2))
    means = result.returns.mean(axis=1)
    assert result.worst == means.min() and result.mean == pytest.approx(means.mean())
    assert result.worst_point == points[int(np.argmin(means))]


def test_workers_do_not_change_the_result():
    one = rlrobust.evaluate(BALANCE, "cartpole-2d", episodes=2, points_per_dim=3, workers=1)
    two = rlrobust.evaluate(BALANCE, "cartpole-2d", episodes=2, points_per_dim=3, workers=2)
    np.testing.assert_array_equal(one.returns, two.returns)
    np.testing.assert_array_equal(one.lengths, two.lengths)


def test_unpicklable_policy_falls_back_to_this_process_with_a_warning():
    with pytest.warns(UserWarning, match="cannot be pickled"):
        result = rlrobust.evaluate(lambda obs: 0, "cartpole-2d", episodes=1, points_per_dim=2, workers=2)
    assert result.settings["workers"] == 1
    assert result.returns.shape == (4, 1)


def test_seeded_sample_instead_of_grid():
    a = rlrobust.evaluate(BALANCE, "cartpole-2d", episodes=1, samples=3, seed=4, workers=1)
    b = rlrobust.evaluate(BALANCE, "cartpole-2d", episodes=1, samples=3, seed=4, workers=1)
    assert a.points == b.points and a.grid_shape is None
    np.testing.assert_array_equal(a.returns, b.returns)


def test_cvar_worst_and_mean_on_hand_made_returns(tmp_path):
    returns = np.array([[1.0, 3.0], [10.0, 10.0], [4.0, 6.0], [-2.0, 0.0], [7.0, 7.0]] * 2)  # 10 points
    points = [{"x": float(i)} for i in range(10)]
    r = SuiteResult("demo", "X-v0", ("x",), points, returns, np.ones_like(returns, dtype=int), cvar_alpha=0.2)
    # point means: 2, 10, 5, -1, 7 (twice); worst 20% = 2 points = {-1, -1}
    assert r.worst == -1.0 and r.mean == 4.6 and r.cvar == -1.0
    r.cvar_alpha = 0.5  # 5 lowest: -1, -1, 2, 2, 5
    assert r.cvar == pytest.approx(1.4)
    r.cvar_alpha = 1.0
    assert r.cvar == pytest.approx(r.mean)
    assert r.rows()[0] == {
        "x": 0.0,
        "mean": 2.0,
        "std": 1.0,
        "min": 1.0,
        "max": 3.0,
        "episodes": 2,
        "mean_length": 1.0,
    }


def test_reports_for_1d_2d_and_3d(tmp_path):
    from rlrobust.evaluation.reports import write_reports

    for dims in (1, 2, 3):
        names = tuple(f"p{i}" for i in range(dims))
        grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 3)] * dims, indexing="ij"), -1).reshape(-1, dims)
        points = [dict(zip(names, map(float, row))) for row in grid]
        returns = np.arange(len(points) * 2, dtype=float).reshape(-1, 2)
        r = SuiteResult(
            f"s{dims}",
            "X-v0",
            names,
            points,
            returns,
            np.ones_like(returns, dtype=int),
            grid_shape=(3,) * dims,
        )
        paths = write_reports(r, tmp_path / str(dims)) if dims < 3 else r.save(tmp_path / str(dims))
        assert paths["plot"].name == ("curve.png" if dims == 1 else "heatmap.png")
        assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
        assert list((tmp_path / str(dims) / "tb").glob("events.out.tfevents.*"))
        doc = json.loads(paths["json"].read_text())
        assert doc["summary"]["worst"] == 0.5 and len(doc["rows"]) == 3**dims
        assert doc["worst_point"] == points[0] and all(isinstance(v, float) for v in r.summary().values())
        assert paths["csv"].read_text().splitlines()[0] == ",".join(
            [*names, "mean", "std", "min", "max", "episodes", "mean_length"]
        )
        assert "worst 0.50" in str(r)


@pytest.fixture(scope="module")
def ppo_zip(tmp_path_factory):
    from stable_baselines3 import PPO

    model = PPO(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        n_steps=32,
        batch_size=32,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [8]},
    )
    path = tmp_path_factory.mktemp("sb3") / "ppo_cartpole.zip"
    model.save(path)
    return model, path


def test_sb3_model_and_its_zip_evaluate_alike(ppo_zip):
    model, path = ppo_zip
    by_model = rlrobust.evaluate(model, "cartpole-2d", episodes=1, points_per_dim=2, workers=1)
    by_path = rlrobust.evaluate(str(path), "cartpole-2d", episodes=1, points_per_dim=2, workers=1)
    np.testing.assert_array_equal(by_model.returns, by_path.returns)

    def predict(obs):
        return int(model.predict(obs, deterministic=True)[0])

    np.testing.assert_array_equal(by_model.returns, reference_returns(predict, by_model.points, 1))


def test_bad_suite_and_missing_checkpoint():
    with pytest.raises(PerturbationError, match="unknown suite"):
        rlrobust.evaluate(BALANCE, "cartpole-9d", episodes=1)
    with pytest.raises(rlrobust.CheckpointError, match="no Stable-Baselines3 model"):
        rlrobust.evaluate("missing.zip", "cartpole-2d", episodes=1)


def test_evaluate_script_writes_reports(ppo_zip, tmp_path):
    _, path = ppo_zip
    out = tmp_path / "eval"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "evaluate.py"),
            f"checkpoint={path}",
            "suite=cartpole-2d",
            "points_per_dim=2",
            "episodes=1",
            "workers=1",
            f"out_dir={out}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "worst" in proc.stdout and "mean return: rows masspole, columns length" in proc.stdout
    assert {p.name for p in out.iterdir()} == {"result.csv", "result.json", "heatmap.png", "tb"}
    assert len((out / "result.csv").read_text().splitlines()) == 5


def test_rlrobust_agent_and_its_checkpoint_evaluate_alike(tmp_path):
    from rlrobust.core.checkpoint import save_checkpoint

    env = gym.make("CartPole-v1")
    agent = rlrobust.make_agent("iqn", env.observation_space, env.action_space, seed=0, net_arch=[16])
    path = save_checkpoint(tmp_path / "checkpoints", agent, step=0)
    by_agent = rlrobust.evaluate(agent, "cartpole-2d", episodes=1, points_per_dim=2, workers=1)
    by_path = rlrobust.evaluate(path, "cartpole-2d", episodes=1, points_per_dim=2, workers=1)
    np.testing.assert_array_equal(by_agent.returns, by_path.returns)

    def act(obs):
        return int(agent.act(obs[None], deterministic=True)[0])

    np.testing.assert_array_equal(by_agent.returns, reference_returns(act, by_agent.points, 1))


def test_evaluate_script_over_seeds_writes_the_summary_over_runs(tmp_path):
    """A checkpoint list: one report folder per run, and the IQM/bootstrap summary over runs."""
    import json

    from rlrobust.core.checkpoint import save_checkpoint

    env = gym.make("CartPole-v1")
    paths = [
        save_checkpoint(
            tmp_path / f"s{s}" / "checkpoints",
            rlrobust.make_agent("iqn", env.observation_space, env.action_space, seed=s, net_arch=[8]),
            step=0,
        )
        for s in range(2)
    ]
    out = tmp_path / "eval"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "evaluate.py"),
            f"checkpoint=[{paths[0]},{paths[1]}]",
            "suite=cartpole-2d",
            "points_per_dim=2",
            "episodes=1",
            "workers=1",
            "tensorboard=false",
            f"out_dir={out}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"run0", "run1", "summary_over_runs.json", "summary_over_runs.md", "profile_over_runs.png"} <= {
        p.name for p in out.iterdir()
    }
    doc = json.loads((out / "summary_over_runs.json").read_text())
    per_run_worst = [
        json.loads((out / f"run{i}" / "result.json").read_text())["summary"]["worst"] for i in range(2)
    ]
    assert doc["over_runs"]["worst"]["runs"] == 2
    assert doc["over_runs"]["worst"]["mean"] == pytest.approx(np.mean(per_run_worst))
    assert [doc["runs"][str(p)]["worst"] for p in paths] == per_run_worst
    assert "IQM" in proc.stdout


def test_evaluate_script_refuses_a_one_element_checkpoint_list(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "evaluate.py"),
            "checkpoint=[a]",
            "suite=cartpole-2d",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "give at least two" in proc.stderr + proc.stdout
