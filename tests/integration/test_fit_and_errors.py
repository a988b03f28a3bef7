"""Bad input refused before work starts, evaluations that always end, and errors a person can
read on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlrobust
from rlrobust.core.errors import ConfigError, PerturbationError, SpaceError
from rlrobust.core.logging import read_metrics
from rlrobust.envs.tabular import TabularMDP, garnet

REPO = Path(rlrobust.__file__).resolve().parent.parent
FAST = {"progress": False, "final_eval_episodes": 1}


def never_built():
    raise AssertionError("the env was built before the config was checked")


# ------------------------------------------------------------------------------ fit checks


def test_a_garnet_checkpoint_on_a_cartpole_suite_is_refused_showing_both_spaces(tmp_path):
    rlrobust.train("robust_rvi_q", "rlrobust/Garnet-v0", total_steps=50, run_dir=tmp_path / "g", **FAST)
    with pytest.raises(SpaceError, match=r"observation space: policy Discrete\(6\) vs env Box\(.*\(4,\)"):
        rlrobust.evaluate(str(tmp_path / "g"), "cartpole-2d", episodes=1, points_per_dim=2, workers=2)


def test_a_pendulum_agent_and_an_sb3_pendulum_zip_on_a_cartpole_suite_are_refused(tmp_path):
    env = gym.make("Pendulum-v1")
    agent = rlrobust.make_agent("dsac", env.observation_space, env.action_space, net_arch=[8])
    with pytest.raises(SpaceError, match=r"\(3,\).*vs env.*\(4,\).*action space: policy Box"):
        rlrobust.evaluate(agent, "cartpole-2d", episodes=1, points_per_dim=2, workers=2)
    from stable_baselines3 import SAC

    SAC("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "sac.zip")
    with pytest.raises(SpaceError, match=r"suite 'cartpole-2d'.*policy Box\(.*\(3,\)"):
        rlrobust.evaluate(str(tmp_path / "sac.zip"), "cartpole-2d", episodes=1, points_per_dim=2, workers=2)


def test_a_suite_of_another_task_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(
        PerturbationError, match=r"suite 'hopper-2d' is for Hopper-v5, not CartPole-v1.*cartpole-2d"
    ):
        rlrobust.train(
            "iqn", "CartPole-v1", total_steps=100, suite="hopper-2d", run_dir=tmp_path / "r", **FAST
        )
    assert not (tmp_path / "r").exists()
    with pytest.raises(PerturbationError, match="unknown suite 'hoper-2d'"):
        rlrobust.train(
            "iqn", "CartPole-v1", total_steps=100, suite="hoper-2d", run_dir=tmp_path / "r", **FAST
        )


def test_a_training_run_whose_agent_does_not_fit_its_suite_is_refused_before_training(tmp_path):
    with pytest.raises(SpaceError, match=r"suite 'pendulum-1d'.*action space: policy Discrete\(2\)"):
        rlrobust.train(
            "iqn",
            lambda: gym.make("CartPole-v1"),
            total_steps=100,
            suite="pendulum-1d",
            run_dir=tmp_path / "r",
            **FAST,
        )
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_suite_evaluation_shows_points_done_episodes_per_second_and_eta(capsys):
    from rlrobust.interop.policies import ConstantPolicy

    rlrobust.evaluate(
        ConstantPolicy(0), "cartpole-2d", episodes=2, points_per_dim=2, workers=1, progress=True
    )
    bar = capsys.readouterr().err
    assert "evaluate cartpole-2d" in bar and "4/4" in bar and "episodes/s" in bar and "<00:00" in bar


@pytest.mark.parametrize(
    "options, message",
    [
        ({"total_steps": -5}, "total_steps must be positive, got -5"),
        ({"total_steps": 100, "eval_interval": -1}, "eval_interval must be >= 0"),
        ({"total_steps": 100, "keep_checkpoints": 0}, "keep_checkpoints must be >= 1"),
        ({"total_steps": 100, "num_envs": 0}, "num_envs must be >= 1"),
    ],
)
def test_config_values_are_checked_before_the_env_is_built(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        rlrobust.train("iqn", never_built, run_dir=tmp_path / "r", **options, **FAST)


def test_the_tabular_mdp_evaluation_that_used_to_hang_ends_at_the_documented_cap(tmp_path):
    mdp = garnet()
    with pytest.warns(UserWarning, match="no time limit; evaluation episodes are capped at 1000 steps"):
        result = rlrobust.train(
            "robust_rvi_q",
            lambda: TabularMDP(mdp.P, mdp.R),
            total_steps=200,
            run_dir=tmp_path / "r",
            progress=False,
            final_eval_episodes=2,
        )
    assert np.isfinite(result.metrics["eval/return_mean"])


# ------------------------------------------------------------------------------ logs on resume


def test_a_torn_metrics_line_is_repaired_and_tensorboard_keeps_the_resumed_step(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "r"
    opts = {
        "agent_kwargs": {"net_arch": [8], "learning_starts": 50, "batch_size": 8},
        "checkpoint_interval": 100,
        "log_interval": 100,
        "run_dir": run,
        **FAST,
    }
    rlrobust.train("iqn", "CartPole-v1", total_steps=200, **opts)
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 300, "train/episo')  # killed in the middle of a write
    capsys.readouterr()
    rlrobust.train("iqn", "CartPole-v1", total_steps=300, **opts)
    assert "dropped a torn last line" in capsys.readouterr().out
    assert [row["step"] for row in read_metrics(run)] == [100, 200, 300]
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/episodes")] == [100, 200, 300]


# ------------------------------------------------------------------------------ command line


def run_script(*args, env=None):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})},
    )


def test_a_library_error_on_the_command_line_is_one_message_and_exit_status_1(tmp_path):
    out = run_script("scripts/train.py", "total_steps=-5", f"run_dir={tmp_path / 'r'}")
    assert out.returncode == 1
    assert out.stderr.strip() == "error (ConfigError): total_steps must be positive, got -5"


@pytest.mark.slow
def test_evaluate_and_make_dataset_errors_are_one_message_too(tmp_path):
    rlrobust.train("robust_rvi_q", "rlrobust/Garnet-v0", total_steps=50, run_dir=tmp_path / "g", **FAST)
    hydra_dir = f"hydra.run.dir={tmp_path / 'hydra'}"  # Hydra's job folder out of the checkout
    out = run_script(
        "scripts/evaluate.py", f"checkpoint={tmp_path / 'g'}", "suite=cartpole-2d", "workers=1", hydra_dir
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error (SpaceError): the policy does not fit suite 'cartpole-2d'" in out.stderr
    out = run_script(
        "scripts/make_dataset.py", f"policy={tmp_path / 'nothing'}", "dataset_id=x/y-v0", hydra_dir
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr and "error (CheckpointError)" in out.stderr
    out = run_script(
        "scripts/evaluate.py",
        f"checkpoint={tmp_path / 'g'}",
        "suite=cartpole-2d",
        hydra_dir,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert out.returncode == 1 and "Traceback" in out.stderr
    full = run_script("scripts/train.py", "total_steps=-5", f"run_dir={tmp_path / 'r'}", "debug=true")
    assert (
        full.returncode == 1 and "Traceback" in full.stderr and "total_steps must be positive" in full.stderr
    )


@pytest.mark.slow
def test_ctrl_c_stops_a_suite_evaluation_cleanly(tmp_path):
    import re
    import signal
    import time

    rlrobust.train(
        "iqn", "CartPole-v1", total_steps=50, run_dir=tmp_path / "c", agent_kwargs={"net_arch": [8]}, **FAST
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "scripts/evaluate.py",
            f"checkpoint={tmp_path / 'c'}",
            "suite=cartpole-2d",
            "points_per_dim=20",
            "episodes=20",
            "workers=2",
            f"out_dir={tmp_path / 'out'}",
        ],
        cwd=REPO,
        start_new_session=True,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    stderr = ""
    while time.time() < deadline and not re.search(r"\| *[1-9]\d*/400", stderr):  # points are being done
        time.sleep(0.5)
        stderr += os.read(proc.stderr.fileno(), 65536).decode() if proc.poll() is None else ""
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers included
    _, rest = proc.communicate(timeout=120)
    stderr += rest
    assert proc.returncode == 130
    assert "interrupted after" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out" / "result.csv").exists()


@pytest.mark.slow
def test_help_lists_the_choices():
    train = run_script("scripts/train.py", "--help").stdout
    for choice in (
        "agent: ",
        "iqn",
        "env: ",
        "experiment: ",
        "quickstart",
        "perturbation: ",
        "hopper-2d",
        "cartpole-2d",
    ):
        assert choice in train
    evaluate = run_script("scripts/evaluate.py", "--help").stdout
    assert "hopper-2d" in evaluate and "pendulum-1d" in evaluate
    assert "env: " in run_script("scripts/make_dataset.py", "--help").stdout
