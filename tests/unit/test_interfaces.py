"""The agent contract of rlrobust.core.interfaces: an agent implementing only the required
protocol trains; an optional hook it implements gets called; the trainer reads only the Schedule."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.core.interfaces import (
    Agent,
    AttachesServices,
    Hooks,
    Schedule,
    TracksProgress,
)
from rlrobust.core.trainer import Trainer, TrainerSettings
from rlrobust.core.types import TrainingServices, TransitionBatch


@dataclasses.dataclass
class MinimalConfig:
    batch_size: int = 8
    learning_starts: int = 20


class MinimalAgent:
    """Only the required protocol: no AgentBase, no optional hook."""

    name: ClassVar[str] = "minimal"
    Config: ClassVar[type] = MinimalConfig
    offline: ClassVar[bool] = False

    def __init__(self, config: MinimalConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.config, self.observation_space, self.action_space = config, observation_space, action_space
        self.device = torch.device("cpu")
        self.num_updates = 0
        self.batch_sizes: list[int] = []

    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        obs = np.asarray(obs)
        return np.zeros(obs.shape[:-1], dtype=np.int64)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.num_updates += 1
        self.batch_sizes.append(len(batch))
        return {"loss/none": 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.num_updates = int(state["num_updates"])


class ProgressAgent(MinimalAgent):
    """The minimal agent plus two optional hooks."""

    name: ClassVar[str] = "progress"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.fractions: list[float] = []
        self.services: TrainingServices | None = None

    def set_progress(self, fraction: float) -> None:
        self.fractions.append(fraction)

    def attach(self, services: TrainingServices) -> None:
        self.services = services


def _train(agent: MinimalAgent, tmp_path, total_steps: int = 100) -> Trainer:
    settings = TrainerSettings(
        total_steps=total_steps, progress=False, final_eval_episodes=2, log_interval=50
    )
    trainer = Trainer(agent, lambda: gym.make("CartPole-v1"), settings, tmp_path / "run")
    result = trainer.run()
    assert result.metrics["steps"] == total_steps
    return trainer


def _agent(cls: type[MinimalAgent]) -> MinimalAgent:
    env = gym.make("CartPole-v1")
    return cls(cls.Config(), env.observation_space, env.action_space)


def test_an_agent_implementing_only_the_required_protocol_trains(tmp_path):
    agent = _agent(MinimalAgent)
    assert isinstance(agent, Agent)
    hooks = Hooks.of(agent)
    assert hooks == Hooks()  # no optional hook found
    trainer = _train(agent, tmp_path)
    # 20 warm-up steps, then one update after each step from step 20 on (Schedule defaults)
    assert agent.num_updates == 81
    assert set(agent.batch_sizes) == {8}
    assert trainer.schedule == Schedule(batch_size=8, learning_starts=20)
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_an_optional_hook_gets_called(tmp_path):
    agent = _agent(ProgressAgent)
    assert isinstance(agent, TracksProgress) and isinstance(agent, AttachesServices)
    _train(agent, tmp_path)
    # before each of the 100 vector steps, with step / total_steps
    assert agent.fractions == pytest.approx([k / 100 for k in range(100)])
    assert agent.services is not None and agent.services.total_steps == 100


def test_schedule_reads_the_config_fields_and_keeps_defaults_for_the_rest():
    schedule = Schedule.from_config(MinimalConfig(batch_size=3))
    assert schedule.batch_size == 3 and schedule.learning_starts == 20
    assert schedule.gamma == 0.99 and schedule.n_step == 1 and schedule.buffer_size == 1_000_000
    assert Schedule(gradient_steps=-1, train_freq=4).updates_per_round(num_envs=2) == 8
    assert Schedule(gradient_steps=3).updates_per_round(num_envs=2) == 3
    with pytest.raises(ConfigError, match="train_freq must be >= 1"):
        Schedule.from_config(type("C", (), {"train_freq": 0})())


def test_every_registered_agent_exposes_its_hooks_through_the_protocols():
    from fakes import build_agent

    import rlrobust

    expected = {
        "dr_rpo": "fresh_batches",
        "iqn": "set_progress",
        "iwocs": "training_params",
        "idql": "prepare",
        "riql": "prepare",
        "robust_rvi_q": "attach",
    }
    for name in rlrobust.list_agents():
        agent = build_agent(name)
        assert isinstance(agent, Agent), name
        hooks = Hooks.of(agent)
        if name in expected:
            assert getattr(hooks, expected[name]), (name, expected[name])
        Schedule.from_config(agent.config)
