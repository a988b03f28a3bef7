"""The agent contract: everything the trainer may read or call on an agent, in one file.

In the spirit of Acme's ``acme/core.py``: small protocols, each with the one job it names.

* :class:`Agent` — the **required** protocol. An agent that implements only this trains online
  from a replay buffer under the schedule of its ``config`` (:class:`Schedule`).
* Optional hooks, each a small protocol; the trainer looks for them once, when it is built
  (:class:`Hooks`), calls those that are there and nothing else:

  =================================  =====================================================
  protocol                           what the trainer does with it
  =================================  =====================================================
  :class:`RequiresServices`          checks the named :class:`TrainingServices` exist
                                     before step 0 and fails naming the missing ones
  :class:`AttachesServices`          hands the agent the run's :class:`TrainingServices`
                                     before step 0 (IWOCS, robust RVI Q-learning)
  :class:`TracksProgress`            ``set_progress(step / total_steps)`` before each
                                     vector step (IQN's ε schedule)
  :class:`ChoosesTrainingParams`     asks for the training env's physical parameters
                                     after each vector step; a changed answer
                                     re-parameterizes every sub-env (IWOCS)
  :class:`HasReplayGenerations`      empties the replay buffer when ``replay_generation``
                                     changes (IWOCS: each inner learner its own data)
  :class:`LearnsOnPolicy`            ``batch_source = "fresh"``: no replay, each update
                                     gets the transitions collected since the last (DR-RPO)
  :class:`PreparesDataset`           ``prepare(dataset)`` once before offline training
                                     (IDQL, RIQL: normalization, action scaling)
  :class:`ReportsDiagnostics`        ``diagnostics(batch)`` at offline log steps only
                                     (costly statistics, RIQL's AWR weights)
  =================================  =====================================================

* :class:`Schedule` — the seven fields of an agent's config the trainer reads (batch size,
  warm-up, train frequency, gradient steps, γ, n-step, buffer size), built once from the config
  by :meth:`Schedule.from_config` with the trainer's defaults for fields a config lacks.

The update schedule follows Stable-Baselines3 (Raffin et al., "Stable-Baselines3: Reliable
Reinforcement Learning Implementations", JMLR 2021), so SB3 users map it one to one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.core.types import TrainingServices, TransitionBatch

__all__ = [
    "Agent",
    "AttachesServices",
    "ChoosesTrainingParams",
    "HasReplayGenerations",
    "Hooks",
    "LearnsOnPolicy",
    "PreparesDataset",
    "ReportsDiagnostics",
    "RequiresServices",
    "Schedule",
    "TracksProgress",
    "TrainingServices",
    "TransitionBatch",
]


# ---------------------------------------------------------------------- required
@runtime_checkable
class Agent(Protocol):
    """The required agent protocol.

    Class attributes:
        name: registry key (``"iqn"``).
        Config: a dataclass, also the Hydra schema of ``conf/agent/<name>.yaml``.
        offline: True if the agent learns from a fixed dataset only (the trainer then refuses
            to run it without one).

    Instance attributes:
        config: the agent's ``Config`` instance; the trainer reads its :class:`Schedule` fields
            and stores the whole config in checkpoints (a resume with other values is refused).
        observation_space, action_space: the spaces the agent was built for (stored in
            checkpoints, so a checkpoint is loaded only into a matching agent).
        device: where the agent computes; the replay buffer lives there too.
        num_updates: updates made so far.

    Agents never touch environments, files or loggers; the trainer does.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    offline: ClassVar[bool]

    config: Any
    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    device: torch.device
    num_updates: int

    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """Actions for a batch of observations ``(B, *obs_shape)`` → ``(B, *act_shape)``;
        an unbatched observation gives an unbatched action (as SB3's ``predict``).

        No gradients; no side effects except advancing the agent's own RNG (exploration).
        """
        ...

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """One learning step; returns finite named floats (``loss/critic``, ``q/mean``, …).

        Raises :class:`~rlrobust.core.errors.NonFiniteError` instead of stepping on NaN/inf.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks *and* targets, optimizers, counters,
        running statistics and the agent's RNG state."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; raises listing missing/unexpected/mis-shaped keys."""
        ...


# ---------------------------------------------------------------------- optional hooks
@runtime_checkable
class RequiresServices(Protocol):
    """An agent that cannot train without some of the run's :class:`TrainingServices`."""

    #: attribute names of :class:`TrainingServices` the run must provide (not None), e.g.
    #: ``frozenset({"generative_model"})``; checked before step 0.
    requires: frozenset[str]


@runtime_checkable
class AttachesServices(Protocol):
    """An agent that needs more than batches: environments, evaluations, a model."""

    def attach(self, services: TrainingServices) -> None:
        """Receive the run's services once, before the first step (after :class:`RequiresServices`
        was checked)."""
        ...


@runtime_checkable
class TracksProgress(Protocol):
    """An agent whose schedule depends on how far training is (exploration decay)."""

    def set_progress(self, fraction: float) -> None:
        """Called with ``step / total_steps`` (in [0, 1)) before each vector step online."""
        ...


@runtime_checkable
class ChoosesTrainingParams(Protocol):
    """An agent that decides the physical parameters of its own training environment."""

    def training_params(self, episodes: int) -> Mapping[str, float] | None:
        """The parameters the training env should hold now, or None to leave it as it is.

        Asked before the first step and after every vector step with the number of finished
        training episodes; when the answer changes, every sub-env gets it through
        ``set_params`` (a static ``ParameterPerturbation``) and restarts its episode.
        """
        ...


@runtime_checkable
class HasReplayGenerations(Protocol):
    """An agent that starts over on new data now and then (a new inner learner)."""

    #: any hashable tag, read after every vector step; the replay buffer is emptied when it changes.
    replay_generation: Hashable


@runtime_checkable
class LearnsOnPolicy(Protocol):
    """An on-policy agent: no replay buffer, each update sees only fresh transitions."""

    #: ``"fresh"``: every update gets the transitions collected since the previous update (all
    #: sub-envs, in order) and no warm-up data; ``"replay"`` (the default): sampled batches.
    batch_source: str


@runtime_checkable
class PreparesDataset(Protocol):
    """An offline agent that looks at its whole dataset before learning."""

    def prepare(self, dataset: Any) -> None:
        """Called once with the offline dataset before the first update (normalization
        statistics, action scaling); the state it computes belongs in ``state_dict``."""
        ...


@runtime_checkable
class ReportsDiagnostics(Protocol):
    """An agent with statistics too costly to compute in every update."""

    def diagnostics(self, batch: TransitionBatch) -> dict[str, float]:
        """Named floats on the last training batch, logged under ``train/`` at log steps only
        (offline training)."""
        ...


@dataclasses.dataclass(frozen=True)
class Hooks:
    """The optional hooks an agent implements, looked up once (the trainer's view of it).

    Build it with :meth:`of`; a field is None (or the default) when the agent lacks the hook.
    """

    requires: frozenset[str] = frozenset()
    attach: Any = None  #: ``AttachesServices.attach`` or None
    set_progress: Any = None  #: ``TracksProgress.set_progress`` or None
    training_params: Any = None  #: ``ChoosesTrainingParams.training_params`` or None
    replay_generations: bool = False  #: the agent is a :class:`HasReplayGenerations`
    fresh_batches: bool = False  #: ``batch_source == "fresh"`` (:class:`LearnsOnPolicy`)
    prepare: Any = None  #: ``PreparesDataset.prepare`` or None
    diagnostics: Any = None  #: ``ReportsDiagnostics.diagnostics`` or None

    @classmethod
    def of(cls, agent: Agent) -> Hooks:
        """The hooks ``agent`` implements (checked against the protocols above)."""
        source = agent.batch_source if isinstance(agent, LearnsOnPolicy) else "replay"
        if source not in ("replay", "fresh"):
            raise ConfigError(
                f"agent {agent.name!r}: batch_source must be 'replay' or 'fresh', got {source!r}"
            )
        return cls(
            requires=frozenset(agent.requires) if isinstance(agent, RequiresServices) else frozenset(),
            attach=agent.attach if isinstance(agent, AttachesServices) else None,
            set_progress=agent.set_progress if isinstance(agent, TracksProgress) else None,
            training_params=agent.training_params if isinstance(agent, ChoosesTrainingParams) else None,
            replay_generations=isinstance(agent, HasReplayGenerations),
            fresh_batches=source == "fresh",
            prepare=agent.prepare if isinstance(agent, PreparesDataset) else None,
            diagnostics=agent.diagnostics if isinstance(agent, ReportsDiagnostics) else None,
        )


# ---------------------------------------------------------------------- the schedule
@dataclasses.dataclass(frozen=True)
class Schedule:
    """The fields of an agent's config the trainer reads; nothing else of the config is used.

    Attributes:
        batch_size: transitions per sampled batch.
        learning_starts: env steps of uniform random warm-up actions before the agent acts and
            learns (SB3's ``learning_starts``).
        train_freq: vector steps between update rounds.
        gradient_steps: updates per round; ``-1`` (or 0): as many as env steps were collected
            in the round (``train_freq × num_envs``).
        gamma: discount of the stored transitions (``discounts = γ^k``).
        n_step: rewards summed per stored transition.
        buffer_size: replay capacity (FIFO).
    """

    batch_size: int = 256
    learning_starts: int = 0
    train_freq: int = 1
    gradient_steps: int = 1
    gamma: float = 0.99
    n_step: int = 1
    buffer_size: int = 1_000_000

    @classmethod
    def from_config(cls, config: Any) -> Schedule:
        """The schedule of an agent's config; a field the config lacks keeps the default above."""
        defaults = cls()
        values = {}
        for f in dataclasses.fields(cls):
            default = getattr(defaults, f.name)
            values[f.name] = type(default)(getattr(config, f.name, default))
        schedule = cls(**values)
        schedule.validate()
        return schedule

    def validate(self) -> None:
        """Refuse values the training loop cannot run with (each message names the valid range)."""
        for name in ("batch_size", "train_freq", "n_step", "buffer_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_starts < 0:
            raise ConfigError(f"learning_starts must be >= 0, got {self.learning_starts}")

    def updates_per_round(self, num_envs: int) -> int:
        """Updates made every ``train_freq`` vector steps (see ``gradient_steps``)."""
        return self.gradient_steps if self.gradient_steps > 0 else self.train_freq * num_envs
