"""Exact resume: a run stopped at a random step (between checkpoints) and resumed from its last
checkpoint ends bit-identical, in parameters and metrics, to the uninterrupted run.

The fast tests stop the run in-process (an exception at a chosen update); the slow ones SIGKILL
a subprocess at a random step, as a cluster preemption would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlrobust
from rlrobust.core import checkpoint as ckpt
from rlrobust.core.env_state import capture_env_state, capture_problem, restore_env_state
from rlrobust.core.logging import read_metrics
from rlrobust.core.trainer import Trainer, TrainerSettings
from rlrobust.envs import make_env

SMALL_IQN = {"net_arch": [32, 32], "learning_starts": 100, "buffer_size": 5000, "batch_size": 32, "n_step": 3}


def deterministic_rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without wall-clock columns."""
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in read_metrics(run_dir)]


def assert_same_parameters(a: dict, b: dict) -> None:
    """Every tensor of two agent state dicts is bitwise equal (networks, optimizers, RNGs)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_parameters(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_parameters(x, y)
    else:
        assert a == b


def final_agent_state(run_dir: Path) -> dict:
    return torch.load(ckpt.latest_checkpoint(run_dir / "checkpoints") / "state.pt", weights_only=False)[
        "agent_state"
    ]


# ------------------------------------------------------------------------------ env state


@pytest.mark.parametrize(
    "make",
    [
        lambda: gym.make("CartPole-v1"),
        lambda: make_env("Hopper-v5", {"kind": "random", "suite": "hopper-2d"}),
        lambda: make_env(
            "Hopper-v5",
            [
                {"kind": "dynamic", "suite": "hopper-2d", "adversary": "random"},
                {"kind": "noisy_action", "alpha": 0.3},
            ],
        ),
        lambda: make_env("rlrobust/Garnet-v0"),
    ],
    ids=["cartpole", "hopper-random-params", "hopper-dynamic-noisy", "garnet"],
)
def test_a_restored_env_continues_bit_for_bit(make):
    """A second env, reset with another seed, continues exactly like the first after restoring
    the first's state mid-episode (simulator, RNGs, time limit, wrappers), across episode ends."""
    first, second = make(), make()
    first.reset(seed=1)
    second.reset(seed=2)
    first.action_space.seed(0)
    for _ in range(30):
        _, _, terminated, truncated, _ = first.step(first.action_space.sample())
        if terminated or truncated:
            first.reset()
    restore_env_state(second, capture_env_state(first))
    for _ in range(300):
        action = first.action_space.sample()
        a, b = first.step(action), second.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
        if a[2] or a[3]:
            assert np.array_equal(first.reset()[0], second.reset()[0])


def test_an_unknown_wrapper_is_reported_not_guessed():
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))
    assert "RecordEpisodeStatistics" in capture_problem(env)
    assert capture_problem(gym.make("CartPole-v1")) is None


# ------------------------------------------------------------------------------ trainer, in-process


def cartpole():
    return gym.make("CartPole-v1")


def make_iqn(seed=0):
    env = gym.make("CartPole-v1")
    return rlrobust.make_agent("iqn", env.observation_space, env.action_space, seed=seed, **SMALL_IQN)


def settings(**kw):
    base = dict(
        total_steps=700,
        progress=False,
        final_eval_episodes=2,
        log_interval=50,
        checkpoint_interval=200,
        num_envs=2,
    )
    base.update(kw)
    return TrainerSettings(**base)


class Stop(Exception):
    """Stands in for a kill in the middle of a run."""


def test_a_run_stopped_between_checkpoints_resumes_bit_identical(tmp_path, monkeypatch):
    straight = Trainer(make_iqn(), cartpole, settings(), tmp_path / "straight").run()

    agent = make_iqn()
    original = agent.update

    def update(batch):
        if agent.num_updates == 230:  # env step ~520: past the checkpoint at 400, mid-episode
            raise Stop
        return original(batch)

    monkeypatch.setattr(agent, "update", update)
    with pytest.raises(Stop):
        Trainer(agent, cartpole, settings(), tmp_path / "stopped").run()
    assert ckpt.read_manifest(tmp_path / "stopped")["step"] == 400
    resumed = Trainer(make_iqn(seed=9), cartpole, settings(), tmp_path / "stopped").run()

    assert_same_parameters(straight.agent.state_dict(), resumed.agent.state_dict())
    assert deterministic_rows(tmp_path / "straight") == deterministic_rows(tmp_path / "stopped")
    assert straight.metrics["eval/return_mean"] == resumed.metrics["eval/return_mean"]


class CounterEnv(gym.Env):
    """A user env rlrobust knows nothing about (no capture_state): resume restarts its episodes."""

    observation_space = gym.spaces.Box(-1e6, 1e6, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t >= 50, False, {}


def test_an_env_without_state_capture_restarts_its_episodes_and_says_so(tmp_path, capsys):
    make = lambda: CounterEnv()  # noqa: E731
    agent = rlrobust.make_agent("iqn", CounterEnv.observation_space, CounterEnv.action_space, **SMALL_IQN)
    Trainer(agent, make, settings(total_steps=200, num_envs=1, final_eval_episodes=0), tmp_path / "run").run()
    capsys.readouterr()
    again = rlrobust.make_agent("iqn", CounterEnv.observation_space, CounterEnv.action_space, **SMALL_IQN)
    Trainer(again, make, settings(total_steps=400, num_envs=1, final_eval_episodes=0), tmp_path / "run").run()
    out = capsys.readouterr().out
    assert out.count("could not be captured") == 1 and "CounterEnv" in out and "restart" in out


# ------------------------------------------------------------------------------ SIGKILL, subprocess


def _train_code(run_dir: Path, spec: dict) -> str:
    return (
        "import torch, rlrobust; torch.set_num_threads(1); "
        f"rlrobust.train(run_dir={str(run_dir)!r}, progress=False, **{spec!r})"
    )


def _kill_at_random_step(
    run_dir: Path, code: str, rng: np.random.Generator, total: int, interval: int
) -> int:
    """Start the run, SIGKILL it once its metrics pass a random step past the first checkpoint
    and off the checkpoint grid; return the step of the checkpoint it will resume from."""
    target = int(rng.integers(interval + 1, total - interval // 2))
    target += 1 if target % interval == 0 else 0
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        rows = read_metrics(run_dir) if (run_dir / "metrics.jsonl").exists() else []
        if rows and rows[-1]["step"] >= target:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before step {target}: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    step = ckpt.read_manifest(run_dir)["step"]
    assert interval <= step < total, step
    return step


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        {"agent": "iqn", "env": "CartPole-v1", "total_steps": 3000, "num_envs": 2, "agent_kwargs": SMALL_IQN},
        {
            "agent": "dsac",
            "env": "Hopper-v5",
            "total_steps": 1600,
            "num_envs": 2,
            "perturbation": {"kind": "random", "suite": "hopper-2d"},
            "agent_kwargs": {
                "net_arch": [32, 32],
                "learning_starts": 200,
                "batch_size": 32,
                "buffer_size": 5000,
            },
        },
        {"agent": "robust_rvi_q", "env": "rlrobust/Garnet-v0", "total_steps": 3000},
    ],
    ids=["cartpole-iqn", "hopper-random-params-dsac", "garnet-robust-rvi-q"],
)
def test_sigkilled_at_a_random_step_resumes_bit_identical(tmp_path, spec):
    interval = spec["total_steps"] // 6
    spec = {**spec, "checkpoint_interval": interval, "log_interval": 50, "final_eval_episodes": 2}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    out = subprocess.run(
        [sys.executable, "-c", _train_code(straight, spec)], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    resumed_from = _kill_at_random_step(killed, _train_code(killed, spec), rng, spec["total_steps"], interval)
    out = subprocess.run(
        [sys.executable, "-c", _train_code(killed, spec)], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"at step {resumed_from}; episodes continue" in out.stdout + out.stderr
    assert_same_parameters(final_agent_state(straight), final_agent_state(killed))
    assert deterministic_rows(straight) == deterministic_rows(killed)
    assert (
        json.loads((straight / "final_evaluation.json").read_text())["eval/return_mean"]
        == json.loads((killed / "final_evaluation.json").read_text())["eval/return_mean"]
    )
