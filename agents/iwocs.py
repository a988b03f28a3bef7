"""IWOCS: Incremental Worst-Case Search (Zouitine, Geist, Rachelson, arXiv 2410.06212).

Robust RL under the *static* model (one physical-parameter point per episode, inside a suite's
box) as a sequence of non-robust problems. A meta-agent: it holds one inner learner per
parameter point and, between iterations, searches the box for the point where its current robust
policy does worst (Algorithm 1, deep variant of §5 and Appendices F-H):

1. learner 0 is the **domain-randomised default** (parameters drawn uniformly per episode);
   learner j ≥ 1 trains on the fixed point ``T_j``;
2. the candidate ``π_i`` acts, at each state s, with the learner of lowest *unregularised* Q among
   the valid ones: ``j* = argmin_j Q_j(s, π_j(s))``, play ``π_{j*}(s)``; learner j is valid at
   ``s_t`` iff its one-step prediction error ``e_j = err(T̂_j(s_{t−1}, a_{t−1}), s_t) ≤ ρ_j``
   (:func:`gating_error`); with no valid learner (or none yet) the default policy acts;
3. after an iteration's updates, ``T_{i+1} = argmin_T V^{π_i}_T`` by grid search (IWOCS*) or
   CMA-ES over Monte-Carlo returns (``agents/iwocs_search.py``) through the trainer's
   ``evaluate(params)``; a new learner starts on ``T_{i+1}``, unless the loop stops.

Each inner learner (:class:`~rlrobust.agents.iwocs_learner.IWOCSLearner`, ``agents/iwocs_learner.py``)
is DSAC (``agents/dsac.py``, the library's SAC-family learner) plus the two heads of the paper's
"enhanced critic", each with its own Adam:

* unregularised twin Q: ``L = Σ_k mean[(Q_k(s,a) − y)²]``, ``y = r + γ^k(1−d)·min_k Q̄_k(s′, π(s′))``
  (``π(s′)`` the actor's mean action, ``Q̄`` Polyak targets);
* dynamics twin ``T̂(s,a) = s + f(s,a)``: ``L = Σ_k mean|T̂_k(s,a) − s′|``; the prediction is the twin mean.

The trainer drives the env physics through two hooks (see ``rlrobust/core/trainer.py``):
``training_params(episodes)`` (a fresh uniform draw per episode for learner 0, then ``T_i``) and
``replay_generation`` (the learner index: the replay buffer is emptied when it changes, so each
learner learns from its own MDP, as one SAC per ``T_j`` does in the paper).

Deviations from the paper:

* The inner learner is DSAC-T, not SAC; the soft critic is DSAC's Gaussian critic.
* Iteration lengths count agent updates (= env steps at ``train_freq = gradient_steps = 1``).
* Stopping: the paper's ``|V^{π_i}_{T_{i+1}}(s0) − Q_i(s0, π_i(s0))| ≤ ε`` compares a discounted Q
  with the trainer's undiscounted Monte-Carlo return, so the deep variant stops when the search
  returns a point within ``stop_epsilon`` (L∞, box normalised to [0, 1]) of one already in the set
  — "the same T found twice". The exact rule is in ``rlrobust/robust/iwocs_tabular.py``.
* Gating scale (``gate_scale``): the paper's error is the L1 norm in observation units
  (``"raw"``), so ``ρ ≤ 1`` means different things per task and per dimension (a velocity and a
  position share one budget; Hopper's one-step state change alone is 0.25–1.24 in those units).
  The default ``"normalized"`` divides each dimension's error by the spread (std) of the state
  changes ``s′ − s`` in the learner's own training data and averages over dimensions, so
  ``ρ = 1`` admits errors of one typical state change per dimension, on any task.
* ``ρ_j`` is chosen from ``rho_candidates`` by the candidate's worst return over the points
  found so far (``T_1..T_j``), not over a full search per ρ (ten times cheaper).
* Gating memory ``(s_{t−1}, a_{t−1})`` lives in ``act(deterministic=True)``; batches of another
  size, or the first call, count every learner as valid. Across an episode boundary the
  prediction from the last state fails, so the default policy plays the first step of each episode.
* Adam's ε = 1e-5 on the two heads; DSAC's own optimiser keeps its defaults.

Over 500 lines, on purpose: the meta-agent's whole loop (schedule, gated robust acting, the search
between iterations, ρ selection, its checkpointed state) reads top to bottom here as Algorithm 1
does; the inner learner and the searches already live in ``iwocs_learner.py`` and ``iwocs_search.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobust.agents.dsac import DSACConfig
from rlrobust.agents.iwocs_learner import IWOCSLearner, gating_error
from rlrobust.agents.iwocs_search import SEARCHES, normalize, worst_case_search
from rlrobust.core.agent_base import AgentBase, batched_act, validate_config
from rlrobust.core.errors import CheckpointError, ConfigError
from rlrobust.core.seeding import numpy_generator, numpy_state, set_numpy_state, spawn_seeds
from rlrobust.core.types import TrainingServices, TransitionBatch


# ----------------------------------------------------------------------------- config
@dataclass
class IWOCSConfig:
    """IWOCS hyperparameters; provenance of the defaults in ``conf/agent/iwocs.yaml``."""

    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 1e-3
    alpha_learning_rate: float = 3e-4
    head_learning_rate: float = 1e-3  #: unregularised Q and dynamics heads
    buffer_size: int = 1_000_000
    learning_starts: int = 10_000  #: random steps before each learner trains
    batch_size: int = 256
    tau: float = 0.005
    gamma: float = 0.99
    train_freq: int = 1
    gradient_steps: int = 1
    ent_coef: str | float = "auto"
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    dsac_kwargs: dict[str, Any] = field(default_factory=dict)  #: any other DSACConfig field
    dr_steps: int = 1_600_000  #: updates of the domain-randomised default learner
    steps_per_iteration: int = 800_000  #: updates of each worst-case learner (its warm-up included)
    n_iterations: int = 3  #: worst-case learners after the default one
    search: str = "cmaes"  #: "cmaes" (IWOCS) or "grid" (IWOCS*)
    grid_points_per_dim: int = 10
    cmaes_generations: int = 6
    cmaes_population: int = 100
    cmaes_mean: float = 0.5
    cmaes_sigma: float = 0.5
    eval_episodes: int = 5  #: Monte-Carlo episodes per searched point
    stop_epsilon: float = 0.01  #: a point this close (normalised L∞) to a known one stops the loop
    rho_candidates: list[float] = field(default_factory=lambda: [round(0.1 * k, 1) for k in range(1, 11)])
    gate_scale: str = (
        "normalized"  #: "normalized" (error / spread of s′ − s, mean over dims) or "raw" (paper's L1)
    )
    search_bounds: dict[str, list[float]] | None = (
        None  #: a sub-box of the suite's to search (None: the suite's)
    )


GATE_SCALES = ("normalized", "raw")


def _validate(cfg: IWOCSConfig) -> None:
    checks = [
        (cfg.search in SEARCHES, f"search must be one of {SEARCHES}"),
        (cfg.dr_steps >= 1 and cfg.steps_per_iteration >= 1, "dr_steps and steps_per_iteration must be >= 1"),
        (cfg.steps_per_iteration > cfg.learning_starts, "steps_per_iteration must exceed learning_starts"),
        (cfg.n_iterations >= 0, "n_iterations must be >= 0"),
        (cfg.eval_episodes >= 1, "eval_episodes must be >= 1"),
        (cfg.stop_epsilon >= 0, "stop_epsilon must be >= 0"),
        (
            len(cfg.rho_candidates) > 0 and all(r > 0 for r in cfg.rho_candidates),
            "rho_candidates must be positive",
        ),
        (cfg.head_learning_rate > 0, "head_learning_rate must be > 0"),
        (cfg.gate_scale in GATE_SCALES, f"gate_scale must be one of {GATE_SCALES}"),
    ]
    validate_config("IWOCS", cfg, checks)


# ----------------------------------------------------------------------------- agent
class IWOCS(AgentBase):
    """Incremental worst-case search over a perturbation suite's parameter box.

    Needs the trainer's ``evaluate`` and ``suite`` services (:meth:`attach`) and a training env
    wrapped in a static :class:`~rlrobust.envs.ParameterPerturbation` (``perturbation: {kind:
    static, suite: <id>}``), whose parameters it sets through :meth:`training_params`.

    Raises:
        SpaceError: non-Box actions or non-vector observations.
        ConfigError: invalid hyperparameters; at :meth:`attach`, a missing suite/evaluator or an
            env without settable parameters.
    """

    name: ClassVar[str] = "iwocs"
    Config: ClassVar[type] = IWOCSConfig
    offline: ClassVar[bool] = False
    requires: ClassVar[frozenset[str]] = frozenset({"evaluate", "suite"})

    def __init__(
        self,
        config: IWOCSConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        self.low, self.high = self.require_box_actions(self.name, action_space)
        self.require_vector_obs(self.name, observation_space)
        _validate(config)
        self.dsac_config = DSACConfig(
            **{
                "learning_rate": config.actor_learning_rate,
                "actor_learning_rate": config.actor_learning_rate,
                "critic_learning_rate": config.critic_learning_rate,
                "alpha_learning_rate": config.alpha_learning_rate,
                "buffer_size": config.buffer_size,
                "learning_starts": config.learning_starts,
                "batch_size": config.batch_size,
                "tau": config.tau,
                "gamma": config.gamma,
                "ent_coef": config.ent_coef,
                "net_arch": list(config.net_arch),
                "activation": config.activation,
                **dict(config.dsac_kwargs),
            }
        )
        search_seed, train_seed = spawn_seeds(seed, 2)
        self.search_rng = numpy_generator(search_seed)  # CMA-ES seeds
        self.train_rng = numpy_generator(train_seed)  # domain-randomisation draws
        self.learners: list[IWOCSLearner] = [self._new_learner(0)]
        self.points: list[dict[str, float]] = []  # T_1, T_2, ... (learner j trains on points[j-1])
        self.rhos: list[float] = []  # ρ_j of learner j >= 1
        self.history: list[dict[str, Any]] = []  # one summary per worst-case search
        self.phase_updates = 0  # updates of the current learner
        self.done = False  # no more searches (n_iterations reached or stopping rule)
        self.stopped = False  # the stopping rule fired
        self.dr_point: dict[str, float] | None = None
        self.dr_episodes = -1
        self.services: TrainingServices | None = None
        self.bounds: dict[str, tuple[float, float]] | None = None
        self._memory: tuple[torch.Tensor, torch.Tensor] | None = None  # gating: (s_{t-1}, a_{t-1})
        self.acting_counts: Counter[str] = Counter()  # diagnostics of the robust policy (acting_stats)

    def _new_learner(self, index: int) -> IWOCSLearner:
        seed = spawn_seeds(self.seed + 1_000_003 * (index + 1), 1)[0]
        return IWOCSLearner(
            self.dsac_config,
            self.observation_space,
            self.action_space,
            device=self.device,
            seed=seed,
            head_learning_rate=self.config.head_learning_rate,
        )

    # ----------------------------------------------------------------- services
    def attach(self, services: TrainingServices) -> None:
        """Take the trainer's ``evaluate`` callback and suite; check the env's parameters are settable."""
        from rlrobust.envs.suites import get_suite

        missing = [n for n in ("evaluate", "suite") if getattr(services, n, None) is None]
        if missing:
            raise ConfigError(
                f"agent 'iwocs' needs {' and '.join(missing)} from the run: set evaluation.suite "
                "(e.g. suite='hopper-2d') and perturbation {kind: static, suite: <same id>}"
            )
        suite = get_suite(services.suite)
        if services.make_env is not None:
            env = services.make_env()
            try:
                params = env.get_wrapper_attr("get_params")() if _has_attr(env, "get_params") else None
                sampler = env.get_wrapper_attr("sampler") if _has_attr(env, "sampler") else None
            finally:
                env.close()
            if params is None or sampler is not None:
                raise ConfigError(
                    f"agent 'iwocs' sets the training env's physical parameters itself; wrap the env with "
                    f"perturbation {{kind: static, suite: {suite.id}}} (got "
                    f"{'no perturbable parameters' if params is None else 'a randomising sampler'})"
                )
            unknown = sorted(set(suite.names) - set(params))
            if unknown:
                raise ConfigError(
                    f"suite {suite.id!r} names parameters {unknown} the env does not have; "
                    f"valid: {sorted(params)}"
                )
        self._check_schedule(services.total_steps)
        self.services, self.bounds = services, self._search_box(suite)

    def _check_schedule(self, total_steps: int | None) -> None:
        """Refuse a schedule whose last search would fall after the run's end."""
        cfg = self.config
        needed = cfg.learning_starts + cfg.dr_steps + cfg.n_iterations * cfg.steps_per_iteration
        if total_steps is not None and needed > total_steps:
            raise ConfigError(
                f"agent 'iwocs': the schedule needs learning_starts + dr_steps + n_iterations x steps_per_iteration "
                f"= {cfg.learning_starts} + {cfg.dr_steps} + {cfg.n_iterations} x {cfg.steps_per_iteration} = "
                f"{needed} env steps, more than total_steps = {total_steps}; shorten the schedule or train longer"
            )

    def _search_box(self, suite: Any) -> dict[str, tuple[float, float]]:
        """The suite's box, narrowed to ``search_bounds`` where given; a box outside the suite's is refused."""
        box = {k: (float(lo), float(hi)) for k, (lo, hi) in suite.bounds.items()}
        for name, bound in (self.config.search_bounds or {}).items():
            if name not in box:
                raise ConfigError(
                    f"agent 'iwocs': search_bounds names {name!r}, not a parameter of suite "
                    f"{suite.id!r}; valid: {sorted(box)}"
                )
            lo, hi = (float(v) for v in bound)
            s_lo, s_hi = box[name]
            if not s_lo <= lo < hi <= s_hi:
                raise ConfigError(
                    f"agent 'iwocs': search_bounds {name} = [{lo}, {hi}] is not a non-empty part of "
                    f"the box of suite {suite.id!r}, {name} = [{s_lo}, {s_hi}]"
                )
            box[name] = (lo, hi)
        return box

    def training_params(self, episodes: int = 0) -> dict[str, float] | None:
        """The physical parameters the training env should hold now (trainer hook).

        Learner 0: a fresh uniform draw from the box each time ``episodes`` (finished training
        episodes) changes — domain randomisation; learner j ≥ 1: its point ``T_j``.
        """
        if len(self.learners) > 1:
            return dict(self.points[len(self.learners) - 2])
        if self.bounds is None:
            return None
        if episodes != self.dr_episodes or self.dr_point is None:
            self.dr_point = {k: float(self.train_rng.uniform(lo, hi)) for k, (lo, hi) in self.bounds.items()}
            self.dr_episodes = episodes
        return dict(self.dr_point)

    @property
    def replay_generation(self) -> int:
        """Index of the learner in training; the trainer empties the replay buffer when it changes."""
        return len(self.learners) - 1

    # ----------------------------------------------------------------- acting
    def _warming_up(self) -> bool:
        return len(self.learners) > 1 and self.phase_updates < self.config.learning_starts

    @batched_act
    @torch.inference_mode()
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """Exploration: the current learner (uniform during a new learner's warm-up). Deterministic: the
        robust policy (gated min over the worst-case learners, else the default policy)."""
        x = self.obs_tensor(obs)
        if deterministic:
            return self._robust_action(x).cpu().numpy()
        if self._warming_up():
            actions = self.np_rng.uniform(self.low, self.high, size=(x.shape[0], *self.low.shape))
            return actions.astype(np.float32)
        return self.learners[-1].act(x.cpu().numpy())

    def _robust_action(self, x: torch.Tensor) -> torch.Tensor:
        # Row by row: a (1, d) forward pass is bitwise the same whatever the batch size, so batched
        # and single-observation calls agree exactly (acting batches are num_envs rows anyway).
        memory = self._memory if self._memory is not None and self._memory[0].shape == x.shape else None
        actions = torch.cat(
            [
                self._robust_row(
                    x[i : i + 1], None if memory is None else (memory[0][i : i + 1], memory[1][i : i + 1])
                )
                for i in range(x.shape[0])
            ]
        )
        self._memory = (x.clone(), actions.clone())
        return actions

    def _robust_row(
        self, x: torch.Tensor, previous: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        # IWOCS's robust Q is the min over the valid learners only. Validity first, so that only
        # the valid learners' actions and Q values are computed; ties go to the lower index.
        models = self.learners[1:]
        counts = self.acting_counts
        counts["steps"] += 1
        valid = self._gate(x, previous) if models and previous is not None else [True] * len(models)
        candidates = [j for j, ok in enumerate(valid) if ok]
        if not candidates:
            counts["fallback" if models else "default"] += 1
            return self.learners[0].mean_action(x)
        acts = [models[j].mean_action(x) for j in candidates]
        q = torch.stack(
            [models[j].unregularized_q(x, a).min(dim=0).values[0] for j, a in zip(candidates, acts)]
        )
        best = int(q.argmin())
        counts[f"acts/m{candidates[best] + 1}"] += 1
        return acts[best]

    def _gate(self, x: torch.Tensor, previous: tuple[torch.Tensor, torch.Tensor]) -> list[bool]:
        """Which worst-case learners explain the step ``previous → x`` (error ≤ ρ_j); counts the errors."""
        models, counts = self.learners[1:], self.acting_counts
        predictions = [m.predict_next(*previous).mean(dim=0) for m in models]
        raw = torch.stack([gating_error(p, x) for p in predictions])  # (M, 1)
        errors = (
            raw
            if self.config.gate_scale == "raw"
            else torch.stack([gating_error(p, x, m.delta_scale) for p, m in zip(predictions, models)])
        )
        valid = (errors <= torch.as_tensor(self.rhos, dtype=errors.dtype, device=self.device).unsqueeze(1))[
            :, 0
        ]
        counts["gated"] += 1
        for j, (e, r, v) in enumerate(zip(errors[:, 0].tolist(), raw[:, 0].tolist(), valid.tolist()), 1):
            counts[f"valid/m{j}"] += int(v)
            counts[f"error_sum/m{j}"] += e
            counts[f"raw_error_sum/m{j}"] += r
        return valid.tolist()

    def acting_stats(self) -> dict[str, float]:
        """What the robust (deterministic) policy did since :meth:`reset_acting_stats`.

        ``steps``: deterministic steps. Fractions of them: ``acts/m<j>`` (learner j ≥ 1 chosen by
        the gated min), ``fallback`` (the default learner 0 acted because no learner was valid),
        ``default`` (learner 0 acted because no worst-case learner exists yet). Over the ``gated``
        steps (those with a previous step to check): ``valid/m<j>`` the fraction on which learner
        j was valid, ``error/m<j>`` its mean gating error (in the ``gate_scale`` units) and
        ``raw_error/m<j>`` its mean raw L1 error (observation units), to compare the two scales.
        """
        c = self.acting_counts
        steps, gated = max(c["steps"], 1), max(c["gated"], 1)
        out = {
            "steps": float(c["steps"]),
            "gated": float(c["gated"]),
            "default": c["default"] / steps,
            "fallback": c["fallback"] / steps,
        }
        for j in range(1, len(self.learners)):
            out[f"acts/m{j}"] = c[f"acts/m{j}"] / steps
            out[f"valid/m{j}"] = c[f"valid/m{j}"] / gated
            out[f"error/m{j}"] = c[f"error_sum/m{j}"] / gated
            out[f"raw_error/m{j}"] = c[f"raw_error_sum/m{j}"] / gated
        return out

    def reset_acting_stats(self) -> None:
        """Start counting :meth:`acting_stats` afresh."""
        self.acting_counts = Counter()

    def __getstate__(self) -> dict[str, Any]:
        # Suite evaluation pickles the agent to its workers; the trainer's services (closures over
        # the trainer) stay behind — a worker only acts.
        return {**self.__dict__, "services": None, "_memory": None, "acting_counts": Counter()}

    def reset_memory(self) -> None:
        """Forget ``(s_{t−1}, a_{t−1})``: the next deterministic step treats every learner as valid."""
        self._memory = None

    # ----------------------------------------------------------------- learning
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """Train the current learner (skipped during a new learner's warm-up); at the end of an
        iteration, run the worst-case search and start the next learner."""
        if self._warming_up():
            metrics: dict[str, float] = {"iwocs/warmup": 1.0}
        else:
            metrics = self.learners[-1].update(batch)
        self.phase_updates += 1
        self.num_updates += 1
        length = self.config.dr_steps if len(self.learners) == 1 else self.config.steps_per_iteration
        if not self.done and self.phase_updates >= length:
            self._end_iteration()
        metrics.update(self.status_metrics())
        return metrics

    def _estimate(self, params: Mapping[str, float]) -> tuple[float, float]:
        """Seeded Monte-Carlo (mean, std) of the robust policy's return at ``params``."""
        assert self.services is not None and self.services.evaluate is not None
        self.reset_memory()
        try:
            out = self.services.evaluate(dict(params), episodes=self.config.eval_episodes, return_std=True)
        except TypeError:  # an evaluator without spread
            out = self.services.evaluate(dict(params), episodes=self.config.eval_episodes)
        self.reset_memory()
        return (float(out[0]), float(out[1])) if isinstance(out, tuple) else (float(out), math.nan)

    def _end_iteration(self) -> None:
        if self.services is None or self.bounds is None:
            raise ConfigError(
                "agent 'iwocs' reached the end of an iteration without the trainer's evaluate/suite "
                "services; call agent.attach(services) (the trainer does) before training"
            )
        cfg, i = self.config, len(self.learners) - 1
        if i >= 1 and len(cfg.rho_candidates) > 1:
            self.rhos[i - 1] = self._select_rho()
        self.reset_acting_stats()
        result = worst_case_search(
            self._estimate,
            self.bounds,
            cfg.search,
            points_per_dim=cfg.grid_points_per_dim,
            generations=cfg.cmaes_generations,
            population=cfg.cmaes_population,
            mean=cfg.cmaes_mean,
            sigma=cfg.cmaes_sigma,
            seed=int(self.search_rng.integers(2**31 - 1)),
        )
        x = normalize(result.point, self.bounds)
        repeated = any(np.abs(x - normalize(p, self.bounds)).max() <= cfg.stop_epsilon for p in self.points)
        self.history.append(
            {
                "iteration": i,
                "point": dict(result.point),
                "value": result.value,
                "std": result.std,
                "evaluations": len(result.evaluations),
                "repeated": repeated,
                "acting": self.acting_stats(),
            }
        )  # how the searched policy acted
        if repeated or i >= cfg.n_iterations:
            self.done, self.stopped = True, repeated
            return
        self.points.append(dict(result.point))
        self.rhos.append(float(max(cfg.rho_candidates)))
        self.learners.append(self._new_learner(i + 1))
        self.phase_updates = 0

    def _select_rho(self) -> float:
        """ρ of the newest learner: the candidate value with the best worst return over the known points."""
        scores = []
        for rho in self.config.rho_candidates:
            self.rhos[-1] = float(rho)
            scores.append(min(self._estimate(p)[0] for p in self.points))
        return float(self.config.rho_candidates[int(np.argmax(scores))])

    def status_metrics(self) -> dict[str, float]:
        """Iteration, model count and the last search's worst point and value (logged every update)."""
        out = {"iwocs/iteration": float(len(self.learners) - 1), "iwocs/done": float(self.done)}
        if self.rhos:
            out["iwocs/rho"] = self.rhos[-1]
        if self.history:
            last = self.history[-1]
            out["iwocs/worst_value"] = float(last["value"])
            if math.isfinite(last["std"]):
                out["iwocs/worst_value_std"] = float(last["std"])
            out.update({f"iwocs/param/{k}": float(v) for k, v in last["point"].items()})
            out["iwocs/search_iteration"] = float(last["iteration"])
            out.update(
                {
                    f"iwocs/search_{k}": v
                    for k, v in last.get("acting", {}).items()
                    if k in ("fallback", "default") or k.startswith("acts/")
                }
            )
        return out

    # ----------------------------------------------------------------- state
    def networks(self) -> dict[str, nn.Module]:
        return {
            f"m{j}.{k}": v for j, learner in enumerate(self.learners) for k, v in learner.networks().items()
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            f"m{j}.{k}": v for j, learner in enumerate(self.learners) for k, v in learner.optimizers().items()
        }

    def extra_state(self) -> dict[str, Any]:
        return {
            "n_learners": len(self.learners),
            "learners": [
                {
                    "num_updates": m.num_updates,
                    "rng_torch": m.generator.get_state(),
                    "rng_numpy": numpy_state(m.np_rng),
                    "running_std": m.running_std.clone(),
                    "delta_moments": m.delta_moments.clone(),
                    "delta_batches": m.delta_batches,
                }
                for m in self.learners
            ],
            "points": [dict(p) for p in self.points],
            "rhos": list(self.rhos),
            "history": [dict(h) for h in self.history],
            "phase_updates": self.phase_updates,
            "done": self.done,
            "stopped": self.stopped,
            "dr_point": self.dr_point,
            "dr_episodes": self.dr_episodes,
            "search_rng": numpy_state(self.search_rng),
            "train_rng": numpy_state(self.train_rng),
        }

    def extra_state_problems(self, state: Mapping[str, Any]) -> list[str]:
        """The base checks plus one ``learners`` entry per learner."""
        problems = super().extra_state_problems(state)
        if "learners" in state and len(state["learners"]) != len(self.learners):
            problems.append(
                f"extra.learners holds {len(state['learners'])} entries, one per learner "
                f"({len(self.learners)}) expected"
            )
        return problems

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        for learner, s in zip(self.learners, state["learners"]):
            learner.num_updates = int(s["num_updates"])
            learner.generator.set_state(s["rng_torch"])
            set_numpy_state(learner.np_rng, s["rng_numpy"])
            learner.running_std = s["running_std"].to(self.device).clone()
            learner.delta_moments = s["delta_moments"].to(self.device).clone()
            learner.delta_batches = int(s["delta_batches"])
        self.points, self.rhos = [dict(p) for p in state["points"]], [float(r) for r in state["rhos"]]
        self.history = [dict(h) for h in state["history"]]
        self.phase_updates, self.done, self.stopped = (
            int(state["phase_updates"]),
            bool(state["done"]),
            bool(state["stopped"]),
        )
        self.dr_point = None if state["dr_point"] is None else dict(state["dr_point"])
        self.dr_episodes = int(state["dr_episodes"])
        set_numpy_state(self.search_rng, state["search_rng"])
        set_numpy_state(self.train_rng, state["train_rng"])
        self._memory = None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Grows (or shrinks) the learner list to the checkpoint's before loading; restores it on failure."""
        n = state.get("extra", {}).get("n_learners", len(self.learners))
        if not isinstance(n, int) or n < 1:
            raise CheckpointError(f"agent 'iwocs': extra.n_learners must be a positive int, got {n!r}")
        before = list(self.learners)
        self.learners = before[:n] + [self._new_learner(j) for j in range(len(before), n)]
        try:
            super().load_state_dict(state)
        except Exception:
            self.learners = before
            raise


def _has_attr(env: gym.Env, name: str) -> bool:
    try:
        env.get_wrapper_attr(name)
        return True
    except AttributeError:
        return False
