"""Training through the public API and the CLI: identity env, multirun, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlrobust
from rlrobust.core.errors import CheckpointError, ConfigError, SpaceError

ROOT = Path(__file__).resolve().parents[2]


class IdentityEnv(gym.Env):
    """SB3's IdentityEnv with a one-hot observation: reward 1 when the action names the state.

    100 steps per episode, so the best return is 100 (the test asks for >= 90).
    """

    def __init__(self, n: int = 4, length: int = 100) -> None:
        self.n, self.length = n, length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = gym.spaces.Discrete(n)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.state = 0, int(self.np_random.integers(self.n))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.state)
        self.t += 1
        self.state = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, self.t >= self.length, {}


def test_c8_iqn_solves_the_identity_env_through_train(tmp_path):
    result = rlrobust.train(
        "iqn",
        IdentityEnv,
        total_steps=3000,
        seed=0,
        run_dir=tmp_path / "run",
        agent_kwargs={
            "learning_starts": 500,
            "net_arch": [64, 64],
            "exploration_fraction": 0.3,
            "target_update_interval": 100,
        },
        progress=False,
        final_eval_episodes=5,
        checkpoint_interval=0,
    )
    assert result.metrics["eval/return_mean"] >= 90, result.metrics
    assert result.run_dir == tmp_path / "run"
    assert json.loads((tmp_path / "run" / "final_evaluation.json").read_text())["steps"] == 3000


def test_iqn_on_continuous_actions_names_agent_and_space():
    with pytest.raises(SpaceError) as info:
        rlrobust.make_agent("iqn", gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2,)))
    assert "iqn" in str(info.value) and "Discrete" in str(info.value)


def test_unknown_trainer_option_and_uneven_vector_steps_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="num_envs"):
        rlrobust.train("iqn", "CartPole-v1", total_steps=100, run_dir=tmp_path, num_env=2)
    with pytest.raises(ConfigError, match="multiple of num_envs"):
        rlrobust.train("iqn", "CartPole-v1", total_steps=101, run_dir=tmp_path, num_envs=2, progress=False)


def test_resume_with_another_env_perturbation_or_seed_is_refused_naming_the_change(tmp_path):
    """A run dir continues only the run it holds: the same env, perturbation and seed (its RNG
    states come from the checkpoint), refused before anything is written; the same env spelled as
    a raw id, and a longer budget, are fine."""
    kw = dict(
        agent_kwargs={"learning_starts": 50, "net_arch": [16]},
        progress=False,
        final_eval_episodes=0,
        checkpoint_interval=100,
        run_dir=tmp_path / "run",
    )
    rlrobust.train("iqn", "cartpole", total_steps=100, **kw)
    config = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match="perturbation.kind: 'none' there, 'random' now"):
        rlrobust.train("iqn", "cartpole", total_steps=200, perturbation="cartpole-2d-random", **kw)
    with pytest.raises(CheckpointError, match="seed: 0 there, 1 now"):
        rlrobust.train("iqn", "cartpole", total_steps=200, seed=1, **kw)
    with pytest.raises(CheckpointError, match="env.id: 'CartPole-v1' there, 'Acrobot-v1' now"):
        rlrobust.train("iqn", "Acrobot-v1", total_steps=200, **kw)
    with pytest.raises(CheckpointError, match="other hyperparameters \\(learning_starts: 50 there, 60 now"):
        rlrobust.train(
            "iqn",
            "cartpole",
            total_steps=200,
            **{**kw, "agent_kwargs": {"learning_starts": 60, "net_arch": [16]}},
        )
    assert (tmp_path / "run" / "config.yaml").read_text() == config  # nothing was written
    assert rlrobust.train("iqn", "CartPole-v1", total_steps=200, **kw).metrics["steps"] == 200


def test_vector_envs_count_every_step_once(tmp_path):
    result = rlrobust.train(
        "iqn",
        "CartPole-v1",
        total_steps=400,
        run_dir=tmp_path / "run",
        num_envs=4,
        agent_kwargs={"learning_starts": 100, "net_arch": [16]},
        progress=False,
        final_eval_episodes=0,
    )
    assert result.metrics["steps"] == 400
    assert result.agent.num_updates == (400 - 100) // 4 + 1  # one update per vector step once learning


def test_multirun_sweep_writes_one_job_dir_per_seed(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "-m",
            "seed=0,1",
            "total_steps=200",
            "agent.learning_starts=50",
            "agent.net_arch=[16]",
            "trainer.progress=false",
            "trainer.final_eval_episodes=1",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for job in ("0", "1"):
        job_dir = tmp_path / "sweep" / job
        assert (job_dir / "config.yaml").exists() and (job_dir / "final_evaluation.json").exists()
        assert "seed: " + job in (job_dir / "config.yaml").read_text()


def test_offline_run_evaluates_in_the_env_recovered_from_the_dataset(tmp_path):
    from rlrobust.data import record_dataset

    record_dataset(
        lambda obs: np.zeros(1, np.float32),
        "Pendulum-v1",
        dataset_id="test/pendulum/zero-v0",
        episodes=2,
        seed=0,
    )
    result = rlrobust.train(
        "riql",
        dataset="test/pendulum/zero-v0",
        total_steps=20,
        run_dir=tmp_path / "run",
        agent_kwargs={"net_arch": [16, 16], "batch_size": 32},
        progress=False,
        final_eval_episodes=1,
    )
    assert "id: Pendulum-v1" in (tmp_path / "run" / "config.yaml").read_text()
    assert result.metrics["steps"] == 20 and np.isfinite(result.metrics["eval/return_mean"])
