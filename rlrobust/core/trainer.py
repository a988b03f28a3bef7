"""The training loop shared by every agent (online and offline).

Online::

    VectorEnv → Collector (one batched ``act`` per vector step) → ReplayBuffer → sample()
    → agent.update → metrics (TensorBoard, metrics.jsonl, progress bar) → checkpoints

Offline: dataset → ``ReplayBuffer.from_dataset`` → the same update/evaluate/checkpoint loop,
counting gradient steps instead of environment steps.

The agent contract is :mod:`rlrobust.core.interfaces`: the trainer calls the required
:class:`~rlrobust.core.interfaces.Agent` methods and the optional hooks the agent implements
(:class:`~rlrobust.core.interfaces.Hooks`, looked up once), and reads only the agent config's
:class:`~rlrobust.core.interfaces.Schedule`.

Update schedule (SB3 semantics, so SB3 users map one to one): learning starts after
``learning_starts`` env steps; then every ``train_freq`` *vector* steps the agent makes
``gradient_steps`` updates (``-1``: as many as env steps were collected).

Training-env hooks (IWOCS): ``training_params(episodes)`` is asked before the first step and
after every vector step with the number of finished training episodes; when the answer changes,
every sub-env gets it through ``set_params`` (a static ``ParameterPerturbation``) and restarts
its episode. A changed ``replay_generation`` empties the replay buffer (a new inner learner
starts on its own data).

Resume: a checkpoint holds the agent, the replay buffer, the collector (counters, RNG, pending
n-step windows, current observations) with every sub-env's full state (simulator, RNGs,
time-limit counters, perturbation wrappers; :mod:`rlrobust.core.env_state`), and the trainer's
counters and pending on-policy data. A run killed at any step and resumed from its last
checkpoint therefore ends bit-identical (parameters and metrics) to the uninterrupted run, and
at exactly ``total_steps``. For an env whose state cannot be captured (a user env or wrapper
without ``capture_state``/``restore_state``) the episodes restart on resume from a reset seeded
by the run seed and the step, and the log says so once.

Over 500 lines, on purpose: the one loop every agent trains through (online and offline) reads
top to bottom here with its resume, NaN guard, evaluation and checkpoint bookkeeping; the parts
that stand alone live in ``collector.py``, ``replay.py``, ``logging.py`` and ``checkpoint.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.checkpoint import (
    config_to_dict,
    dataset_fingerprint,
    latest_checkpoint,
    latest_intact_checkpoint,
    load_payload,
    save_checkpoint,
)
from rlrobust.core.collector import VECTORIZATION, Collector, make_vector_env
from rlrobust.core.episodes import run_episodes
from rlrobust.core.errors import CheckpointError, ConfigError, NonFiniteError, choices, describe_differences
from rlrobust.core.interfaces import Agent, HasReplayGenerations, Hooks, Schedule
from rlrobust.core.logging import RunLogger
from rlrobust.core.replay import FLOAT32_FIELDS, ReplayBuffer
from rlrobust.core.runlock import hold_run_dir
from rlrobust.core.seeding import spawn_seeds
from rlrobust.core.trackers import MetricSink
from rlrobust.core.types import TrainingServices, TransitionBatch

RESUME_MODES = ("auto", "must", "never")


@dataclasses.dataclass
class TrainerSettings:
    """Trainer options (``trainer:`` in ``conf/train.yaml``).

    Attributes:
        total_steps: env steps (online) or gradient steps (offline) to run.
        seed: run seed; env resets, replay sampling and agents derive their seeds from it.
        num_envs: sub-envs of the vector env (``total_steps`` must be a multiple).
        vectorization: ``sync`` or ``async`` (async only pays off for slow envs on many cores).
        eval_interval: steps between evaluations in the nominal env (0 disables).
        eval_episodes: episodes per periodic evaluation.
        final_eval_episodes: episodes of the final nominal evaluation (0 disables).
        checkpoint_interval: steps between checkpoints (0: only the final one).
        keep_checkpoints: how many step checkpoints rotation keeps.
        resume: ``auto`` (resume when the run dir has a checkpoint), ``must`` (fail without
            one), ``never`` (start fresh even if checkpoints exist).
        log_interval: steps between metric rows.
        progress: show a progress bar with steps/s and the recent return.
        torch_threads: torch intra-op threads (1 is fastest for small nets on shared CPUs).
        device: where the agent and the replay buffer live.
    """

    total_steps: int = 10_000
    seed: int = 0
    num_envs: int = 1
    vectorization: str = "sync"
    eval_interval: int = 0
    eval_episodes: int = 10
    final_eval_episodes: int = 10
    checkpoint_interval: int = 0
    keep_checkpoints: int = 2
    resume: str = "auto"
    log_interval: int = 1000
    progress: bool = True
    torch_threads: int | None = 1
    device: str = "cpu"

    def validate(self) -> None:
        """Refuse invalid values before anything is built (each message names the valid range)."""
        if self.resume not in RESUME_MODES:
            raise ConfigError(f"unknown resume mode {self.resume!r}; valid: {RESUME_MODES}")
        if self.vectorization not in VECTORIZATION:
            raise ConfigError(f"unknown vectorization {self.vectorization!r}; valid: {VECTORIZATION}")
        if self.total_steps <= 0:
            raise ConfigError(f"total_steps must be positive, got {self.total_steps}")
        if self.num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {self.num_envs}")
        for name in ("eval_interval", "checkpoint_interval", "log_interval", "final_eval_episodes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 disables it), got {getattr(self, name)}")
        if self.eval_interval and self.eval_episodes < 1:
            raise ConfigError(f"eval_episodes must be >= 1 when eval_interval > 0, got {self.eval_episodes}")
        if self.keep_checkpoints < 1:
            raise ConfigError(
                f"keep_checkpoints must be >= 1 (resume needs the newest), got {self.keep_checkpoints}"
            )
        if self.total_steps % self.num_envs:
            raise ConfigError(
                f"total_steps={self.total_steps} is not a multiple of num_envs={self.num_envs}; "
                "a vector step advances every sub-env, so the run could not end at exactly total_steps"
            )


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns."""

    agent: Any
    run_dir: Path
    metrics: dict[str, float]


def check_resumable_agent(run_dir: Path, manifest: Mapping[str, Any], agent: Agent) -> None:
    """Refuse to resume ``agent`` from a checkpoint (its ``manifest``) of another agent or of other
    hyperparameters, naming each differing one."""
    if manifest["agent"] != agent.name:
        raise CheckpointError(
            f"run dir {run_dir} holds a checkpoint of agent {manifest['agent']!r}, "
            f"cannot resume agent {agent.name!r} from it; use another run_dir or resume=never"
        )
    differing = describe_differences(manifest.get("agent_config", {}), config_to_dict(agent.config))
    if differing:
        raise CheckpointError(
            f"run dir {run_dir} was trained with other hyperparameters ("
            + ", ".join(differing)
            + "); resume with the same config, or use another run_dir or resume=never"
        )


class Trainer:
    """Runs one training job; see the module docstring.

    Args:
        agent: the agent to train.
        env_fn: builds one environment of the task (also used for evaluation).
        settings: trainer options.
        run_dir: where checkpoints, TensorBoard events and metrics go.
        dataset: an offline dataset (:mod:`rlrobust.data`); switches to the offline loop.
        run_config: the resolved configuration, stored in checkpoints.
        suite: a perturbation suite id for services that need one (IWOCS).
        vector_env_fn: ``num_envs -> VectorEnv`` for the training envs (same-step autoreset,
            NumPy outputs), e.g. batched MuJoCo Warp worlds; default: ``num_envs`` copies of
            ``env_fn`` (:func:`~rlrobust.core.collector.make_vector_env`).
        sinks: metric sinks (experiment trackers) that get every logged scalar; their owner closes them.
    """

    def __init__(
        self,
        agent: Agent,
        env_fn: Callable[[], gym.Env],
        settings: TrainerSettings,
        run_dir: str | Path,
        *,
        dataset: Any = None,
        run_config: dict[str, Any] | None = None,
        suite: Any = None,
        vector_env_fn: Callable[[int], gym.vector.VectorEnv] | None = None,
        sinks: Sequence[MetricSink] = (),
    ) -> None:
        settings.validate()
        self.agent, self.env_fn, self.settings = agent, env_fn, settings
        self.vector_env_fn = vector_env_fn
        self.run_dir = Path(run_dir)
        self.dataset, self.run_config, self.suite = dataset, run_config or {}, suite
        self.sinks = tuple(sinks)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        #: the config fields the loop reads, and the optional hooks the agent implements
        #: (:mod:`rlrobust.core.interfaces`), both looked up once
        self.schedule = Schedule.from_config(agent.config)
        self.hooks = Hooks.of(agent)
        self.fresh = self.hooks.fresh_batches
        self.offline = dataset is not None
        if agent.offline and not self.offline:
            raise ConfigError(
                f"agent {agent.name!r} learns offline only: pass a dataset (dataset=<id or path>)"
            )
        self.buffer_seed, self.collector_seed, self.eval_seed = spawn_seeds(settings.seed, 3)
        self.best_eval = -math.inf
        self.step = 0
        self._fresh: list[dict[str, np.ndarray] | None] = []  # on-policy: each step's finished transitions
        self._replay_generation: Any = None  # training-env hooks: last seen / applied values
        self._dataset_fingerprint: str | None = None  # offline: the data this run trains on
        self._training_params: dict[str, float] | None = None
        self._last_update: dict[str, float] = {}  # the latest update's metrics (logged at the next row)
        self._episodes_continue = False  # set by a resume that restored the sub-envs' states

    # ------------------------------------------------------------------ services
    def services(self) -> TrainingServices:
        """The :class:`TrainingServices` this run can offer an agent (see ``attach``)."""
        probe = self.env_fn()
        unwrapped = probe.unwrapped
        model = None
        if hasattr(unwrapped, "P") and hasattr(unwrapped, "R"):
            model = (torch.as_tensor(unwrapped.P), torch.as_tensor(unwrapped.R))
        generative = unwrapped.generative_model() if hasattr(unwrapped, "generative_model") else None
        probe.close()
        return TrainingServices(
            make_env=self.env_fn,
            evaluate=self._evaluate_service,
            suite=self.suite,
            model=model,
            generative_model=generative,
            total_steps=self.settings.total_steps,
        )

    def _attach_services(self) -> None:
        required, attach = self.hooks.requires, self.hooks.attach
        if not required and attach is None:
            return
        services = self.services()
        missing = sorted(r for r in required if getattr(services, r, None) is None)
        if missing:
            raise ConfigError(
                f"agent {self.agent.name!r} needs {', '.join(missing)} from the environment/run, which this run "
                f"does not provide (env: {self.run_config.get('env', {}).get('id', 'given object')}; "
                f"suite: {self.suite!r}); see the agent's documentation for what it requires"
            )
        if attach is not None:
            attach(services)

    def _evaluate_service(
        self, params: Mapping[str, float], episodes: int = 5, return_std: bool = False
    ) -> float | tuple[float, float]:
        """``TrainingServices.evaluate``: mean return under ``params`` (``(mean, std)`` with ``return_std``)."""
        mean, std = self.evaluate(episodes, params=params)
        return (mean, std) if return_std else mean

    def _sync_training_env(self, collector: Collector, buffer: ReplayBuffer | None) -> None:
        """Apply the agent's training-env hooks (module docstring); a no-op for other agents."""
        if self.hooks.replay_generations:
            generation = cast(HasReplayGenerations, self.agent).replay_generation
            if generation != self._replay_generation:
                if self._replay_generation is not None and buffer is not None:
                    buffer.clear()
                self._replay_generation = generation
        ask = self.hooks.training_params
        params = ask(collector.episodes) if ask is not None else None
        if params is not None and params != self._training_params:
            collector.sub_envs.call("set_params", **params)
            collector.reset(reset_seed=self.collector_seed + self.step)
            self._training_params = dict(params)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, episodes: int, *, params: Mapping[str, float] | None = None) -> tuple[float, float]:
        """Mean and std of the deterministic policy's return over ``episodes`` seeded episodes."""
        env = self.env_fn()
        try:
            if params:
                env.get_wrapper_attr("set_params")(**dict(params))
            returns, _ = run_episodes(
                env,
                lambda obs: self.agent.act(np.asarray(obs)[None], deterministic=True)[0],
                [self.eval_seed + k for k in range(episodes)],
            )
        finally:
            env.close()
        return float(np.mean(returns)), float(np.std(returns))

    # ------------------------------------------------------------------ checkpoints
    def _trainer_state(self, buffer: ReplayBuffer | None, collector: Collector | None) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "best_eval": self.best_eval,
            "last_update": dict(self._last_update),
            "fresh": list(self._fresh),
            "training_params": self._training_params,
            "replay_generation": self._replay_generation,
        }
        if buffer is not None:
            # Offline data is reloaded from the dataset; only the sampler state is needed.
            state["replay"] = {"rng": buffer.generator.get_state()} if self.offline else buffer.state_dict()
        if self.offline:
            state["dataset_fingerprint"] = self._dataset_fingerprint
            state["dataset_transitions"] = len(self.dataset.rewards)
        if collector is not None:
            state["collector"] = collector.state_dict()
        return state

    def _save(
        self, buffer: ReplayBuffer | None, collector: Collector | None, name: str | None = None
    ) -> Path:
        return save_checkpoint(
            self.checkpoint_dir,
            self.agent,
            step=self.step,
            trainer_state=self._trainer_state(buffer, collector),
            run_config=self.run_config,
            keep=self.settings.keep_checkpoints,
            name=name,
        )

    def _maybe_resume(self, buffer: ReplayBuffer | None, collector: Collector | None) -> str:
        mode = self.settings.resume
        if mode == "never":
            if latest_checkpoint(self.checkpoint_dir) is None:
                return "fresh start"
            # Keep the old run's checkpoints out of this run's rotation and of any later resume.
            aside = self.checkpoint_dir.with_name(f"checkpoints.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            self.checkpoint_dir.rename(aside)
            return f"fresh start (resume=never; earlier checkpoints moved to {aside})"
        latest, damaged = latest_intact_checkpoint(self.checkpoint_dir)
        for path, error in damaged:
            # Out of the rotation and of later resumes, but kept for inspection.
            aside = path.with_name(f"damaged-{path.name}")
            path.rename(aside)
            warnings.warn(
                f"{error}; resuming from {latest if latest else 'scratch'} instead "
                f"(the damaged checkpoint was moved to {aside})",
                stacklevel=2,
            )
        if latest is None and (mode == "must" or damaged):
            why = "holds no complete checkpoint" if not damaged else "holds only damaged checkpoints"
            raise CheckpointError(
                f"resume={mode!r} but {self.checkpoint_dir} {why}"
                + ("" if mode == "must" else "; delete them or use resume=never to start fresh")
            )
        if latest is None:
            return "fresh start"
        # Loaded on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        manifest, payload = load_payload(latest, "cpu")
        check_resumable_agent(self.run_dir, manifest, self.agent)
        state = payload["trainer_state"]
        saved_data = state.get("dataset_fingerprint")
        if self.offline and saved_data is not None and saved_data != self._dataset_fingerprint:
            raise CheckpointError(
                f"run dir {self.run_dir} was trained on other data (dataset fingerprint {saved_data} of "
                f"{state.get('dataset_transitions', '?')} transitions there, {self._dataset_fingerprint} of "
                f"{len(self.dataset.rewards)} now); resume it with the dataset it started on, or use another "
                "run_dir or resume=never"
            )
        if int(state["step"]) > self.settings.total_steps:
            raise ConfigError(
                f"total_steps={self.settings.total_steps} is below step {int(state['step'])} of the checkpoint "
                f"{latest} this run would resume from; set total_steps >= {int(state['step'])}, or use another "
                "run_dir or resume=never"
            )
        self.agent.load_state_dict(payload["agent_state"])
        self.step, self.best_eval = int(state["step"]), float(state["best_eval"])
        self._last_update = dict(state.get("last_update", {}))
        self._fresh = list(state.get("fresh", []))
        self._training_params = state.get("training_params")
        self._replay_generation = state.get("replay_generation")
        if buffer is not None:
            if self.offline:
                buffer.generator.set_state(state["replay"]["rng"])
            else:
                buffer.load_state_dict(state["replay"])
        if collector is not None:
            self._episodes_continue = collector.load_state_dict(state["collector"])
            if not self._episodes_continue:
                problem = (
                    state["collector"].get("env_state_problem") or "the checkpoint predates env-state capture"
                )
                return (
                    f"resumed from {latest} at step {self.step}; the env's state could not be captured "
                    f"({problem}), so its episodes restart from a reset and the run is not bit-identical "
                    "to an uninterrupted one"
                )
            return f"resumed from {latest} at step {self.step}; episodes continue where they were"
        if self.offline and saved_data is None:
            return f"resumed from {latest} at step {self.step} (a checkpoint without a dataset fingerprint: data not checked)"
        return f"resumed from {latest} at step {self.step}"

    # ------------------------------------------------------------------ the loops
    def run(self) -> TrainResult:
        """Train (resuming when the run dir has a checkpoint), then evaluate; see the module docstring."""
        if self.settings.torch_threads:
            torch.set_num_threads(int(self.settings.torch_threads))
        with hold_run_dir(self.run_dir):  # one writer per run dir (re-entrant for run_from_config)
            self._attach_services()
            return self._run_offline() if self.offline else self._run_online()

    def _update(self, batch: TransitionBatch, logger: RunLogger) -> dict[str, float]:
        try:
            return self.agent.update(batch)
        except NonFiniteError as exc:
            latest = latest_checkpoint(self.checkpoint_dir)
            where = (
                f"the last good checkpoint is {latest}" if latest else "no checkpoint had been written yet"
            )
            logger.write(f"training stopped at step {self.step}: {exc}; {where}")
            logger.close()
            raise NonFiniteError(f"{exc} (run step {self.step}; {where})") from exc

    def _crossed(self, interval: int) -> bool:
        """Whether the last step crossed a multiple of ``interval`` (0: never). Online, one vector
        step advances ``num_envs`` env steps, so an exact multiple may be skipped over."""
        stride = 1 if self.offline else self.settings.num_envs
        return bool(interval) and self.step % interval < stride

    def _next_due(self, step: int) -> int:
        """The first step after ``step`` at which :meth:`_crossed` can hold for a log, evaluation,
        checkpoint or progress interval, or the last step (online: steps advance by ``num_envs``,
        so a multiple ``m`` of an interval is crossed exactly at the first step ``>= m``)."""
        s = self.settings
        intervals = (s.log_interval, s.eval_interval, s.checkpoint_interval, 100 if s.progress else 0)
        return min([s.total_steps] + [(step // k + 1) * k for k in intervals if k])

    def _periodic(self, logger: RunLogger, buffer: Any, collector: Any, metrics: dict[str, float]) -> None:
        s = self.settings
        if self._crossed(s.eval_interval):
            mean, std = self.evaluate(s.eval_episodes)
            metrics.update({"eval/return_mean": mean, "eval/return_std": std})
            logger.write(f"step {self.step}: eval return {mean:.2f} ± {std:.2f}")
            if mean > self.best_eval:
                self.best_eval = mean
                self._save(buffer, collector, name="best")
        if metrics:
            logger.log(self.step, metrics)
        if self._crossed(s.checkpoint_interval) and self.step < s.total_steps:
            self._save(buffer, collector)

    def _run_online(self) -> TrainResult:
        s = self.settings
        sch = self.schedule
        buffer = ReplayBuffer(sch.buffer_size, device=self.agent.device, seed=self.buffer_seed)
        envs = (
            make_vector_env(self.env_fn, s.num_envs, s.vectorization)
            if self.vector_env_fn is None
            else self.vector_env_fn(s.num_envs)
        )
        collector = Collector(envs, n_step=sch.n_step, gamma=sch.gamma, seed=self.collector_seed)
        status = self._maybe_resume(buffer, collector)
        logger = RunLogger(
            self.run_dir,
            total_steps=s.total_steps,
            start_step=self.step,
            progress=s.progress,
            sinks=self.sinks,
        )
        logger.write(f"{self.agent.name}: {status}; run dir {self.run_dir}")
        if not self._episodes_continue:
            # A fresh start, or a resume whose envs could not be captured: a reset seeded by
            # (seed, step), so even that is reproducible.
            collector.reset(reset_seed=self.collector_seed + self.step)
        self._sync_training_env(collector, buffer)
        set_progress = self.hooks.set_progress
        syncs_env = self.hooks.replay_generations or self.hooks.training_params is not None
        updates_per_train = sch.updates_per_round(s.num_envs)
        replay = None if self.fresh else buffer
        # Logging, evaluation, checkpoints and the progress bar happen at multiples of their
        # intervals; the loop compares the step with the next such multiple only, and builds
        # metrics only there (a cheap env makes this loop's own per-step work count).
        due = self._next_due(self.step)
        total, learning_starts, train_freq = s.total_steps, sch.learning_starts, sch.train_freq
        try:
            while self.step < total:
                if set_progress is not None:
                    set_progress(self.step / total)
                policy = None if self.step < learning_starts else self.agent.act
                episodes = collector.step(policy, replay)
                if self.fresh and self.step >= learning_starts:  # on-policy: no warm-up data
                    self._fresh.append(collector.last_transitions)
                self.step = collector.total_steps
                vector_steps = self.step // s.num_envs
                if self.step >= learning_starts and vector_steps % train_freq == 0:
                    if self.fresh:
                        self._last_update = self._update(_stack_fresh(self._fresh, self.agent.device), logger)
                        self._fresh = []
                    elif len(buffer) > 0:
                        for _ in range(updates_per_train):
                            self._last_update = self._update(buffer.sample(sch.batch_size), logger)
                if syncs_env:
                    self._sync_training_env(collector, buffer)
                for ep in episodes:
                    logger.log_scalar("train/episode_return", ep["return"], self.step)
                if self.step < due:
                    continue
                metrics: dict[str, float] = {}
                if self._crossed(s.log_interval) or self.step == s.total_steps:
                    metrics.update({f"train/{k}": v for k, v in self._last_update.items()})
                    if collector.recent_returns:
                        metrics["train/return_recent"] = float(np.mean(collector.recent_returns))
                    metrics["train/episodes"] = collector.episodes
                self._periodic(logger, buffer, collector, metrics)
                if s.progress and (self._crossed(100) or self.step == s.total_steps):
                    recent = float(np.mean(collector.recent_returns)) if collector.recent_returns else None
                    logger.progress(self.step, recent)
                due = self._next_due(self.step)
            self._save(buffer, collector)
            final = self._final_metrics(logger, collector)
        finally:
            logger.close()
            collector.close()
        return TrainResult(self.agent, self.run_dir, final)

    def _run_offline(self) -> TrainResult:
        s = self.settings
        sch = self.schedule
        self._dataset_fingerprint = dataset_fingerprint(self.dataset)
        buffer = ReplayBuffer.from_dataset(
            self.dataset, gamma=sch.gamma, device=self.agent.device, seed=self.buffer_seed
        )
        prepare = self.hooks.prepare
        if prepare is not None:
            prepare(self.dataset)
        status = self._maybe_resume(buffer, None)
        logger = RunLogger(
            self.run_dir,
            total_steps=s.total_steps,
            start_step=self.step,
            progress=s.progress,
            sinks=self.sinks,
        )
        logger.write(
            f"{self.agent.name}: offline, {len(buffer)} transitions; {status}; run dir {self.run_dir}"
        )
        last: dict[str, float] = {}
        try:
            while self.step < s.total_steps:
                batch = buffer.sample(sch.batch_size)
                last = self._update(batch, logger)
                self.step += 1
                metrics = {}
                if self._crossed(s.log_interval):
                    # Optional costly statistics (e.g. RIQL's AWR weights), only at log steps.
                    diagnostics = self.hooks.diagnostics
                    extra = diagnostics(batch) if diagnostics is not None else {}
                    metrics = {f"train/{k}": v for k, v in {**last, **extra}.items()}
                self._periodic(logger, buffer, None, metrics)
                if s.progress and (self._crossed(100) or self.step == s.total_steps):
                    logger.progress(self.step)
            self._save(buffer, None)
            final = self._final_metrics(logger, None)
        finally:
            logger.close()
        return TrainResult(self.agent, self.run_dir, final)

    def _final_metrics(self, logger: RunLogger, collector: Collector | None) -> dict[str, float]:
        final: dict[str, float] = {"steps": float(self.step)}
        if collector is not None:
            final["episodes"] = float(collector.episodes)
            if collector.recent_returns:
                final["train/return_recent"] = float(np.mean(collector.recent_returns))
        if not math.isnan(logger.steps_per_second):
            final["time/steps_per_second"] = logger.steps_per_second
        if self.settings.final_eval_episodes:
            mean, std = self.evaluate(self.settings.final_eval_episodes)
            final.update({"eval/return_mean": mean, "eval/return_std": std})
            logger.log(self.step, {"eval/return_mean": mean, "eval/return_std": std})
        (self.run_dir / "final_evaluation.json").write_text(json.dumps(final, indent=2))
        return final


def _stack_fresh(chunks: list[dict[str, np.ndarray] | None], device: torch.device) -> TransitionBatch:
    """One batch from the transitions collected since the last update (on-policy agents)."""
    present = [c for c in chunks if c]
    keys = present[0].keys()
    arrays = {k: np.concatenate([np.asarray(c[k]) for c in present]) for k in keys}
    for k in FLOAT32_FIELDS:  # as the replay buffer stores them
        arrays[k] = arrays[k].astype(np.float32)
    tensors = {k: torch.as_tensor(v, device=device) for k, v in arrays.items()}
    core = ("observations", "actions", "rewards", "next_observations", "dones", "discounts")
    return TransitionBatch(
        **{k: tensors[k] for k in core}, extras={k: v for k, v in tensors.items() if k not in core}
    )


def settings_from(options: Mapping[str, Any]) -> TrainerSettings:
    """:class:`TrainerSettings` from a mapping, rejecting unknown option names."""
    valid = {f.name for f in dataclasses.fields(TrainerSettings)}
    unknown = set(options) - valid
    if unknown:
        raise ConfigError(f"unknown trainer option(s) {choices(unknown)}; valid: {choices(valid)}")
    return TrainerSettings(**dict(options))
