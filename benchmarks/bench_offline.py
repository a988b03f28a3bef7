"""Offline-RL benchmarks: ``benchmarks/benchmark.py offline-speed | offline-dataset | offline``.

Over 500 lines: three benchmarks that share their CLI, the Hopper presets and the CORL-style
reference; splitting the speed part into its own module is left to a later change.

* :func:`speed` (``offline-speed``): gradient steps/s of IQL, RIQL and IDQL next to a plain
  CORL-style IQL loop (:class:`CorlIQL`) and the IDQL code of an earlier commit, same process.
* :func:`offline_dataset` (``offline-dataset``): the medium-quality Hopper-v5 data, from scratch:
  train the behaviour policy (DSAC-T, ``conf/experiment/dsac_hopper.yaml``, resumable), pick the
  checkpoint whose deterministic return lies nearest the middle of the medium range, record at
  least 200k transitions with its sampled actions (D4RL's medium sets are sampled too) and, from
  the same checkpoint's replay buffer, a medium-replay-style dataset.
* :func:`offline` (``offline``): the experiment. BC (the AWR actor with β = 0), IQL, RIQL and
  IDQL on the clean data; IQL and RIQL on a copy with 30 % of the transitions corrupted by each of
  RIQL's four random attacks, RIQL with its published per-attack Hopper hyperparameters. Each run
  is an ordinary run dir trained by ``rlrobust.train`` (which resumes it); finished runs are
  skipped, so the experiment spans sittings. Writes ``results.json``, a learning-curve PNG
  (normalized score vs gradient steps, mean ± std over seeds) and ``table.md``.

Usage (``docs/benchmarks.md``)::

    OMP_NUM_THREADS=1 python benchmarks/benchmark.py offline-speed
    OMP_NUM_THREADS=1 python benchmarks/benchmark.py offline-dataset --workdir /path/to/runs
    OMP_NUM_THREADS=1 python benchmarks/benchmark.py offline --workdir /path/to/runs --out docs/results/offline_hopper
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from presets import load_preset
from timing import Timer
from torch.nn import functional as F

import rlrobust
from rlrobust.agents.riql import IQL_BASELINE
from rlrobust.core.errors import ConfigError, choices, describe_differences
from rlrobust.core.types import TransitionBatch
from rlrobust.data import D4RL_REF_SCORES, corrupt, normalized_score

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- speed
class CorlIQL:
    """The reference: a plain CORL-style IQL update (``algorithms/offline/iql.py``), written out
    as users write it: two Q MLPs, a value MLP and a deterministic tanh actor (2×256 ReLU), three
    Adam optimizers, three backward passes, a per-parameter Polyak loop, ``.item()`` metrics.

    One change from CORL keeps it comparable to :class:`~rlrobust.agents.riql.RIQL` with
    :data:`~rlrobust.agents.riql.IQL_BASELINE`: the critic's target uses the value *before* its
    step (RIQL computes all three losses from the pre-update networks), so given the same weights
    and batches both make the same updates (``tests/agents/test_riql.py``).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        hidden: int = 256,
        lr: float = 3e-4,
        gamma: float = 0.99,
        tau: float = 0.005,
        expectile: float = 0.7,
        beta: float = 3.0,
        max_weight: float = 100.0,
        decay_steps: int = 3_000_000,
        seed: int = 0,
    ) -> None:
        from torch import nn

        torch.manual_seed(seed)

        def net(out: int, inp: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(inp, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, out),
            )

        self.q1, self.q2 = net(1, obs_dim + act_dim), net(1, obs_dim + act_dim)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.vf, self.actor = net(1, obs_dim), net(act_dim, obs_dim)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=lr)
        self.v_opt = torch.optim.Adam(self.vf.parameters(), lr=lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.actor_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.actor_opt, decay_steps)
        self.gamma, self.tau, self.expectile, self.beta, self.max_weight = (
            gamma,
            tau,
            expectile,
            beta,
            max_weight,
        )

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        obs, actions, next_obs = batch.observations, batch.actions, batch.next_observations
        rewards, dones = batch.rewards.unsqueeze(-1), batch.dones.unsqueeze(-1)
        sa = torch.cat([obs, actions], -1)
        with torch.no_grad():
            target_q = torch.min(self.q1_target(sa), self.q2_target(sa))
            next_v = self.vf(next_obs)
        # value
        v = self.vf(obs)
        adv = target_q - v
        v_loss = torch.mean(torch.abs(self.expectile - (adv < 0).float()) * adv**2)
        self.v_opt.zero_grad()
        v_loss.backward()
        self.v_opt.step()
        # critics
        targets = rewards + (1.0 - dones) * self.gamma * next_v
        q_loss = (F.mse_loss(self.q1(sa), targets) + F.mse_loss(self.q2(sa), targets)) / 2
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        with torch.no_grad():
            for target, source in ((self.q1_target, self.q1), (self.q2_target, self.q2)):
                for tp, sp in zip(target.parameters(), source.parameters()):
                    tp.data.copy_((1 - self.tau) * tp.data + self.tau * sp.data)
        # actor
        exp_adv = torch.exp(self.beta * adv.detach()).clamp(max=self.max_weight)
        bc = torch.sum((torch.tanh(self.actor(obs)) - actions) ** 2, dim=1)
        actor_loss = torch.mean(exp_adv.squeeze(-1) * bc)
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        self.actor_sched.step()
        return {"value_loss": v_loss.item(), "q_loss": q_loss.item(), "actor_loss": actor_loss.item()}

    def load_from(self, agent: Any) -> None:
        """Copy an IQL-configured RIQL agent's weights (ensemble member k → ``q{k+1}``)."""
        from rlrobust.core.networks import EnsembleLinear

        ensembles = {
            id(net): [m for m in net.modules() if isinstance(m, EnsembleLinear)]
            for net in (agent.critic, agent.critic_target)
        }
        with torch.no_grad():
            for net, source, member in (
                (self.q1, agent.critic, 0),
                (self.q2, agent.critic, 1),
                (self.q1_target, agent.critic_target, 0),
                (self.q2_target, agent.critic_target, 1),
            ):
                for e, layer in zip(
                    ensembles[id(source)], [m for m in net if isinstance(m, torch.nn.Linear)]
                ):
                    layer.weight.copy_(e.weight[member].T)
                    layer.bias.copy_(e.bias[member, 0])
            self.vf.load_state_dict(agent.value.state_dict())
            self.actor.load_state_dict(agent.actor.state_dict())


def synthetic_batches(
    n: int, batch_size: int, obs_dim: int = 11, act_dim: int = 3, seed: int = 0
) -> list[TransitionBatch]:
    """``n`` Hopper-shaped batches (obs 11, act 3 in [−1, 1], 1% terminal, γ = 0.99)."""
    g = torch.Generator().manual_seed(seed)
    return [
        TransitionBatch(
            torch.randn(batch_size, obs_dim, generator=g),
            torch.rand(batch_size, act_dim, generator=g) * 2 - 1,
            torch.randn(batch_size, generator=g),
            torch.randn(batch_size, obs_dim, generator=g),
            (torch.rand(batch_size, generator=g) < 0.01).float(),
            torch.full((batch_size,), 0.99),
        )
        for _ in range(n)
    ]


def baseline_agent_class(ref: str, module: str = "idql") -> type:
    """The agent class of ``agents/<module>.py`` as it was at git ``ref`` (with the helper modules it
    imports from ``agents/`` at that ref), loaded under private names: the baseline of a speed-up."""
    import importlib
    import re
    import subprocess

    root = HERE.parent
    folder = Path(tempfile.mkdtemp(prefix=f"baseline_{module}_"))
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{ref}:agents/{module}.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for helper in sorted(set(re.findall(r"from rlrobust\.agents\.(\w+) import", source))):
        text = subprocess.run(
            ["git", "-C", str(root), "show", f"{ref}:agents/{helper}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (folder / f"baseline_{helper}.py").write_text(text)
        source = source.replace(f"from rlrobust.agents.{helper} import", f"from baseline_{helper} import")
    (folder / f"baseline_{module}.py").write_text(source)
    sys.path.insert(0, str(folder))
    mod = importlib.import_module(f"baseline_{module}")
    return next(
        v
        for v in vars(mod).values()
        if isinstance(v, type) and getattr(v, "name", None) == module and v.__module__ == mod.__name__
    )


def speed(
    steps: int = 100,
    repeats: int = 5,
    batch_size: int = 256,
    warmup: int = 10,
    idql_baseline: str = "1065904",
    seed: int = 0,
) -> dict[str, Any]:
    """Gradient steps/s, one process, one torch thread, alternating learners, medians over repeats.

    * ``corl_iql``: :class:`CorlIQL`, the plain reference loop;
    * ``iql``: RIQL with :data:`~rlrobust.agents.riql.IQL_BASELINE` (2 critics, min, squared loss);
    * ``riql``: RIQL defaults (K = 5, quantile α = 0.25, Huber, observation normalization);
    * ``idql`` and ``idql_baseline`` (the IDQL code at git ``idql_baseline``), batch ``batch_size``.

    Every learner updates on the same Hopper-shaped synthetic batches (obs 11, act 3) after
    ``warmup`` updates; wall-clock and process-CPU-time rates are both reported.
    """
    import rlrobust

    torch.set_num_threads(1)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (11,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    batches = synthetic_batches(8, batch_size, seed=seed)
    learners: dict[str, Any] = {
        "corl_iql": CorlIQL(11, 3, seed=seed),
        "iql": rlrobust.make_agent(
            "riql", obs_space, act_space, seed=seed, batch_size=batch_size, **IQL_BASELINE
        ),
        "riql": rlrobust.make_agent("riql", obs_space, act_space, seed=seed, batch_size=batch_size),
        "idql": rlrobust.make_agent("idql", obs_space, act_space, seed=seed, batch_size=batch_size),
    }
    if idql_baseline:
        cls = baseline_agent_class(idql_baseline)
        learners["idql_baseline"] = cls(cls.Config(batch_size=batch_size), obs_space, act_space, seed=seed)
    for learner in learners.values():
        for i in range(warmup):
            learner.update(batches[i % 8])
    rates: dict[str, list[float]] = {f"{k}{s}": [] for k in learners for s in ("", "_cpu")}
    for _ in range(repeats):
        for name, learner in learners.items():
            n = steps if not name.startswith("idql") else max(steps // 4, 5)  # IDQL is ~10x slower
            with Timer() as t:
                for i in range(n):
                    learner.update(batches[i % 8])
            rates[name].append(n / t.wall)
            rates[f"{name}_cpu"].append(n / t.cpu)
    out: dict[str, Any] = {k: statistics.median(v) for k, v in rates.items()}
    for suffix in ("", "_cpu"):
        out[f"iql_over_corl{suffix}"] = out[f"iql{suffix}"] / out[f"corl_iql{suffix}"]
        out[f"riql_over_corl{suffix}"] = out[f"riql{suffix}"] / out[f"corl_iql{suffix}"]
        if idql_baseline:
            out[f"idql_over_baseline{suffix}"] = out[f"idql{suffix}"] / out[f"idql_baseline{suffix}"]
    out["all"] = rates
    out["settings"] = dict(
        batch_size=batch_size,
        steps=steps,
        idql_steps=max(steps // 4, 5),
        repeats=repeats,
        warmup=warmup,
        idql_baseline=idql_baseline,
        torch_threads=1,
        obs_dim=11,
        act_dim=3,
        load_average=os.getloadavg(),
    )
    return out


# ----------------------------------------------------------------------------- the dataset
MEDIUM = (1000.0, 2000.0)  # deterministic return of the behaviour policy: about a third of expert
EVAL_SEEDS = [10_000 + k for k in range(10)]  # reset seeds of every behaviour-policy evaluation here


def train_behaviour(workdir: str | Path, seed: int = 0) -> Path:
    """Train (or resume, or skip when finished) the DSAC-T behaviour run of ``conf/experiment/dsac_hopper.yaml``.

    The same run as ``python scripts/train.py experiment=dsac_hopper seed=<seed> run_dir=<this dir>``.
    """
    run_dir = Path(workdir) / "behaviour" / f"dsac-hopper-s{seed}"
    if (run_dir / "final_evaluation.json").exists():
        return run_dir
    preset = load_preset("dsac_hopper")
    rlrobust.train(
        "dsac",
        "hopper",
        total_steps=preset["total_steps"],
        seed=seed,
        run_dir=run_dir,
        agent_kwargs=preset["agent"],
        **preset["trainer"],
    )
    return run_dir


def _evaluate_policy(agent: Any, env_id: str, *, deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
    from rlrobust.core.episodes import run_episodes

    returns, lengths = run_episodes(
        gym.make(env_id),
        lambda obs: agent.act(np.asarray(obs)[None], deterministic=deterministic)[0],
        EVAL_SEEDS,
    )
    return np.asarray(returns, dtype=np.float64), np.asarray(lengths)


def pick_checkpoint(
    run_dir: str | Path, low: float = MEDIUM[0], high: float = MEDIUM[1], env_id: str = "Hopper-v5"
) -> dict[str, Any]:
    """The checkpoint whose deterministic return (10 episodes) is nearest ``(low + high)/2``, among
    those whose periodic evaluation (``metrics.jsonl``) lay in ``[low, high]``.

    Raises:
        ConfigError: no evaluation of the run lies in the range (the history is in the message).
    """
    from rlrobust.core.checkpoint import load_agent
    from rlrobust.core.logging import read_metrics

    run_dir = Path(run_dir)
    history = [
        (int(r["step"]), float(r["eval/return_mean"]))
        for r in read_metrics(run_dir)
        if "eval/return_mean" in r
    ]
    candidates = [
        (step, ret)
        for step, ret in history
        if low <= ret <= high and (run_dir / "checkpoints" / f"step_{step:09d}").is_dir()
    ]
    if not candidates:
        raise ConfigError(
            f"no checkpoint of {run_dir} evaluated in [{low}, {high}]; evaluations (step, return): "
            f"{[(s, round(r)) for s, r in history]}; train longer or widen the range"
        )
    best: dict[str, Any] | None = None
    for step, periodic in candidates:
        path = run_dir / "checkpoints" / f"step_{step:09d}"
        returns, lengths = _evaluate_policy(load_agent(path), env_id, deterministic=True)
        found = {
            "checkpoint": str(path),
            "step": step,
            "periodic_eval": periodic,
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "episode_length_mean": float(lengths.mean()),
        }
        print(json.dumps(found), flush=True)
        mid = (low + high) / 2
        if low <= found["return_mean"] <= high and (
            best is None or abs(found["return_mean"] - mid) < abs(best["return_mean"] - mid)
        ):
            best = found
    if best is None:
        raise ConfigError(f"no checkpoint of {run_dir} kept a return in [{low}, {high}] over 10 episodes")
    return best


def record_medium(
    checkpoint: dict[str, Any],
    dataset_id: str,
    *,
    min_transitions: int = 200_000,
    env_id: str = "Hopper-v5",
    seed: int = 1000,
) -> Any:
    """At least ``min_transitions`` transitions of the checkpoint's *sampled* actions, with the
    behaviour policy's returns and normalized scores in the metadata (``metadata["behaviour"]``)."""
    import minari

    from rlrobust.core.checkpoint import load_agent
    from rlrobust.data import load_dataset, record_dataset

    lo, hi = D4RL_REF_SCORES["hopper"]
    episodes = math.ceil(min_transitions / max(checkpoint["episode_length_mean"], 1.0) * 1.05)
    while True:
        data = record_dataset(
            load_agent(checkpoint["checkpoint"]),
            env_id,
            dataset_id=dataset_id,
            episodes=episodes,
            seed=seed,
            deterministic=False,
            ref_min_score=lo,
            ref_max_score=hi,
            algorithm_name="rlrobust DSAC-T (conf/experiment/dsac_hopper.yaml)",
            description="medium-quality Hopper-v5 data: sampled actions of a DSAC-T policy "
            "whose deterministic return is about a third of expert",
            overwrite=True,
        )
        if len(data) >= min_transitions:
            break
        episodes = math.ceil(episodes * min_transitions / len(data) * 1.05)
    sampled = normalized_score(data.episode_returns(), data)
    deterministic = normalized_score(checkpoint["return_mean"], data)
    behaviour = {
        **checkpoint,
        "deterministic_score": deterministic.score,
        "sampled_return_mean": sampled.raw_return,
        "sampled_return_std": float(np.std(data.episode_returns())),
        "sampled_score": sampled.score,
        "episodes": episodes,
        "transitions": len(data),
        "convention": sampled.convention,
    }
    minari.load_dataset(dataset_id).storage.update_metadata({"rlrobust_behaviour": behaviour})
    return load_dataset(dataset_id)


def record_replay(checkpoint: dict[str, Any], dataset_id: str, env_id: str = "Hopper-v5") -> Any:
    """A medium-replay-style dataset: every transition in the checkpoint's replay buffer (the
    behaviour run's data up to that step, warm-up included), split back into episodes."""
    from rlrobust.core.checkpoint import load_payload
    from rlrobust.data import write_transitions

    _, payload = load_payload(checkpoint["checkpoint"])
    storage = {k: v.numpy() for k, v in payload["trainer_state"]["replay"]["storage"].items()}
    lo, hi = D4RL_REF_SCORES["hopper"]
    return write_transitions(
        storage,
        gym.make(env_id),
        dataset_id=dataset_id,
        ref_min_score=lo,
        ref_max_score=hi,
        algorithm_name="rlrobust DSAC-T replay buffer (conf/experiment/dsac_hopper.yaml)",
        description=f"replay buffer of the behaviour run up to step {checkpoint['step']}",
        overwrite=True,  # "from scratch", as record_medium
    )


def offline_dataset(
    workdir: str = "runs/offline",
    dataset_id: str = "rlrobust/hopper-v5/medium-v0",
    replay_id: str = "rlrobust/hopper-v5/medium-replay-v0",
    min_transitions: int = 200_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Both datasets from scratch: behaviour run (resumed/skipped as needed), checkpoint, recordings.

    The Minari datasets land in ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``).
    """
    torch.set_num_threads(1)
    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    run_dir = train_behaviour(workdir, seed)
    chosen = pick_checkpoint(run_dir)
    medium = record_medium(chosen, dataset_id, min_transitions=min_transitions)
    replay = record_replay(chosen, replay_id)
    out = {
        "behaviour": medium.metadata["behaviour"],
        "medium": {"id": dataset_id, "transitions": len(medium)},
        "medium_replay": {
            "id": replay_id,
            "transitions": len(replay),
            "return_mean": float(np.mean(replay.episode_returns())),
        },
    }
    (Path(workdir) / "datasets.json").write_text(json.dumps(out, indent=1))
    return out


# ----------------------------------------------------------------------------- the experiment
ATTACKS = ("observations", "actions", "rewards", "dynamics")  # RIQL's four random attacks
#: RIQL's per-attack Hopper hyperparameters for random corruption (RIQL_config.py, Yang et al. 2024):
#: huber_sigma, quantile_alpha, n_critics. Clean data: RIQL's defaults (1.0, 0.25, 5).
RIQL_HOPPER: dict[str, dict[str, Any]] = {
    "observations": {"huber_sigma": 0.1, "quantile_alpha": 0.25, "n_critics": 3},
    "actions": {"huber_sigma": 0.1, "quantile_alpha": 0.25, "n_critics": 5},
    "rewards": {"huber_sigma": 1.0, "quantile_alpha": 0.25, "n_critics": 3},
    "dynamics": {"huber_sigma": 1.0, "quantile_alpha": 0.5, "n_critics": 5},
}
#: name -> (registered agent, hyperparameters). BC is IQL's AWR actor with β = 0 (all weights 1).
AGENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "bc": ("riql", {**IQL_BASELINE, "beta": 0.0}),
    "iql": ("riql", dict(IQL_BASELINE)),
    # β = 1 instead of RIQL's 3, chosen on seed 0 of the clean data: at β = 3 the AWR weights of
    # this narrow dataset had an effective sample size of ~7 % of the batch, the actor left the
    # data's actions by 0.16-0.76 at in-distribution states and the hopper fell after ~27 steps on
    # every dataset (docs/benchmarks.md, "Offline agents").
    "riql": ("riql", {"beta": 1.0}),
    "idql": ("idql", {"batch_size": 256}),  # official 512; 256 as the others, half the compute
}
CLEAN_AGENTS = ("bc", "iql", "riql", "idql")
CORRUPTED_AGENTS = ("iql", "riql")


def configurations(
    attacks: Sequence[str] = ATTACKS, agents: Sequence[str] = CLEAN_AGENTS
) -> list[dict[str, Any]]:
    """``{agent, data, kwargs}`` per configuration: ``agents`` on the clean data, and IQL and RIQL
    (those of them in ``agents``) on each attack's corrupted copy. Unknown names are refused."""
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        raise ConfigError(f"unknown attack(s) {bad}; valid: {choices(ATTACKS)}")
    bad = [a for a in agents if a not in AGENTS]
    if bad:
        raise ConfigError(f"unknown agent(s) {bad}; valid: {choices(AGENTS)}")
    out = [{"agent": a, "data": "clean", "kwargs": dict(AGENTS[a][1])} for a in agents]
    for attack in attacks:
        for a in (x for x in CORRUPTED_AGENTS if x in agents):
            kwargs = dict(AGENTS[a][1]) | (RIQL_HOPPER[attack] if a == "riql" else {})
            out.append({"agent": a, "data": attack, "kwargs": kwargs})
    return out


#: the seed of every corrupted copy (which transitions, and their noise)
CORRUPTION_SEED = 0
#: (rate, scale) of every corrupted copy in reports written before they recorded each run's data
#: (all with corruption seed 0, :data:`CORRUPTION_SEED`)
LEGACY_CORRUPTION = (0.3, 1.0)
#: each run dir's record of the data it trains on (``_train_run`` writes it, ``offline`` checks it)
DATA_FILE = "data.json"


def data_identity(fingerprint: str, attack: str, rate: float, scale: float) -> dict[str, Any]:
    """What a run trains on: the dataset's fingerprint (not its name: an id and a path can hold
    the same data) and the corruption applied; the clean data does not depend on its settings."""
    corrupted = attack != "clean"
    return {
        "fingerprint": fingerprint,
        "attack": attack,
        "rate": rate if corrupted else None,
        "scale": scale if corrupted else None,
        "corruption_seed": CORRUPTION_SEED if corrupted else None,
    }


def _recorded_data(run_dir: Path) -> dict[str, Any] | None:
    """The run dir's ``data.json`` (None when it has none)."""
    path = run_dir / DATA_FILE
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path} is unreadable ({exc}); move the run dir away or use another --workdir"
        ) from exc


def check_run_data(jobs: list[dict[str, Any]]) -> None:
    """Refuse, before any work, run dirs that were trained on other data than their job's: the
    same dataset id rebuilt elsewhere (another fingerprint) or other corruption settings. A
    finished one would otherwise be skipped and reported as if it had trained on this data. A run
    dir with checkpoints but no ``data.json`` predates the record: it is named, not refused."""
    wrong, unchecked = [], []
    for job in jobs:
        run_dir, expected = Path(job["run_dir"]), job["data_identity"]
        recorded = _recorded_data(run_dir)
        if recorded is None:
            if (run_dir / "checkpoints").exists():
                unchecked.append(str(run_dir))
        elif recorded != expected:
            wrong.append(f"{run_dir} ({', '.join(describe_differences(recorded, expected))})")
    if unchecked:
        print(
            f"{len(unchecked)} run dir(s) predate {DATA_FILE}, their data is not checked: {', '.join(unchecked)}"
        )
    if wrong:
        raise ConfigError(
            f"{len(wrong)} run dir(s) trained on other data: "
            + "; ".join(wrong)
            + "; move them away or use another --workdir"
        )


def _finished(run_dir: Path, steps: int) -> bool:
    path = run_dir / "final_evaluation.json"
    return path.exists() and json.loads(path.read_text()).get("steps", 0) >= steps


def _train_run(job: dict[str, Any]) -> str:
    """One run (in a worker process): load and corrupt the data, then train/resume to the budget."""
    from rlrobust.data import load_dataset
    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    torch.set_num_threads(1)
    run_dir = Path(job["run_dir"])
    if not (run_dir / "checkpoints").exists():  # a fresh run (an older one without the record stays so)
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / f"{DATA_FILE}.tmp"
        tmp.write_text(json.dumps(job["data_identity"], indent=1))
        os.replace(tmp, run_dir / DATA_FILE)  # atomic: never a half-written record
    data = load_dataset(job["dataset"])
    if job["data"] != "clean":
        data = corrupt(data, kind=job["data"], rate=job["rate"], scale=job["scale"], seed=CORRUPTION_SEED)
    rlrobust.train(
        AGENTS[job["agent"]][0],
        job["env"],
        total_steps=job["steps"],
        seed=job["seed"],
        dataset=data,
        agent_kwargs=job["kwargs"],
        run_dir=job["run_dir"],
        eval_interval=job["eval_interval"],
        eval_episodes=job["eval_episodes"],
        final_eval_episodes=job["final_eval_episodes"],
        checkpoint_interval=job["eval_interval"],
        progress=False,
    )
    return job["run_dir"]


def score_reference(dataset: Any, env_id: str) -> tuple[dict[str, Any], str]:
    """The reference scores the benchmark normalizes with, and a sentence saying which they are."""
    ref = normalized_score(0.0, dataset, table=D4RL_REF_SCORES, env_id=env_id)
    if ref.source == "dataset metadata":
        note = f"normalized with the dataset's own reference scores ({ref.ref_min}, {ref.ref_max})"
    elif ref.normalized:
        note = (
            f"the dataset metadata lacks reference scores (ref_min_score/ref_max_score): normalized with "
            f"D4RL's {ref.source} = ({ref.ref_min}, {ref.ref_max})"
        )
    else:
        note = "the dataset metadata lacks reference scores and no table entry fits: raw returns are reported"
    return {
        "ref_min": ref.ref_min,
        "ref_max": ref.ref_max,
        "source": ref.source,
        "normalized": ref.normalized,
    }, note


def offline(
    dataset: str = "rlrobust/hopper-v5/medium-v0",
    workdir: str = "runs/offline",
    out: str = "docs/results/offline_hopper",
    env: str = "Hopper-v5",
    gradient_steps: int = 100_000,
    seeds: Sequence[int] = (0, 1, 2),
    attacks: Sequence[str] = ATTACKS,
    agents: Sequence[str] = CLEAN_AGENTS,
    rate: float = 0.3,
    scale: float = 1.0,
    eval_interval: int = 10_000,
    eval_episodes: int = 5,
    final_eval_episodes: int = 10,
    workers: int = 2,
    report_only: bool = False,
) -> dict[str, Any]:
    """Run (resume, skip) every configuration × seed, then write the report into ``out``.

    Run dirs are ``<workdir>/<agent>-<data>-s<seed>``; a run is finished when its
    ``final_evaluation.json`` reached ``gradient_steps``. ``report_only`` trains nothing. Curves
    come from ``eval_episodes`` deterministic episodes every ``eval_interval`` steps (IDQL's
    acting costs as much as its training, so they are fewer), final scores from ``final_eval_episodes``.
    """
    from rlrobust.data import load_dataset

    configs = configurations(attacks, agents)  # bad names are refused before any work
    data = load_dataset(dataset)
    reference, note = score_reference(data, env)
    print(note, flush=True)
    fingerprint = data.fingerprint()
    root = Path(workdir)
    jobs = [
        {
            "agent": c["agent"],
            "data": c["data"],
            "kwargs": c["kwargs"],
            "seed": s,
            "dataset": dataset,
            "env": env,
            "steps": gradient_steps,
            "rate": rate,
            "scale": scale,
            "eval_interval": eval_interval,
            "eval_episodes": eval_episodes,
            "final_eval_episodes": final_eval_episodes,
            "run_dir": str(root / f"{c['agent']}-{c['data']}-s{s}"),
            "data_identity": data_identity(fingerprint, c["data"], rate, scale),
        }
        for s in seeds
        for c in configs
    ]  # seed-major: seed 0 (for choosing settings) finishes first
    check_run_data(jobs)
    todo = [j for j in jobs if not _finished(Path(j["run_dir"]), gradient_steps)]
    skipped = [j["run_dir"] for j in jobs if j not in todo]
    if skipped:
        print(f"skipping {len(skipped)} finished run(s)", flush=True)
    if todo and not report_only:
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for run_dir in pool.map(_train_run, todo):
                    print(f"finished {run_dir}", flush=True)
        else:
            for job in todo:
                print(f"finished {_train_run(job)}", flush=True)
    results = report(jobs, data, reference, note, Path(out), gradient_steps)
    results["skipped"] = skipped
    return results


def report(
    jobs: list[dict[str, Any]],
    data: Any,
    reference: dict[str, Any],
    note: str,
    out: Path,
    gradient_steps: int,
) -> dict[str, Any]:
    """Learning curves and final scores of the finished runs: ``results.json``, ``curves.png``,
    ``table.md`` and, with two seeds or more, IQM / mean with 95 % stratified-bootstrap intervals and
    ``profile.png`` (IQL vs RIQL performance profiles over every (seed, dataset) final score)."""
    from rlrobust.core.logging import read_metrics
    from rlrobust.evaluation.stats import summarize_runs

    def norm(ret: float) -> float:
        if not reference["normalized"]:
            return ret
        return 100.0 * (ret - reference["ref_min"]) / (reference["ref_max"] - reference["ref_min"])

    behaviour = data.metadata.get("behaviour") or {}
    behaviour_score = norm(float(np.mean(data.episode_returns())))  # the data's own (sampled) return
    runs: dict[str, dict[str, Any]] = {}
    for job in jobs:
        run_dir = Path(job["run_dir"])
        if not _finished(run_dir, gradient_steps):
            continue
        curve = {}
        for row in read_metrics(run_dir):
            if "eval/return_mean" in row:
                curve[int(row["step"])] = norm(float(row["eval/return_mean"]))
        final = json.loads((run_dir / "final_evaluation.json").read_text())
        entry = _entry(runs, job)
        if _recorded_data(run_dir) is None:  # a run dir from before data.json: its data is unverified,
            entry["data_identity"] = None  # so a later report never merges it as this data's
        entry["seeds"][job["seed"]] = {
            "final": norm(float(final["eval/return_mean"])),
            "curve": curve,
        }
    # What the runs trained on (the same dataset id can hold other data, e.g. rebuilt elsewhere).
    dataset_record = {
        "id": data.metadata.get("dataset_id"),
        "transitions": len(data),
        "fingerprint": data.fingerprint(),
    }
    _merge_recorded(runs, jobs, out / "results.json", reference, gradient_steps, behaviour_score)
    summary = {}
    for key, entry in runs.items():
        finals = [s["final"] for s in entry["seeds"].values()]
        held_out = [s["final"] for seed, s in entry["seeds"].items() if seed != 0]
        late = {seed: late_score(s["curve"]) for seed, s in entry["seeds"].items() if s["curve"]}
        summary[key] = {
            "mean": float(np.mean(finals)),
            "std": float(np.std(finals)),
            "n": len(finals),
            "seed0": entry["seeds"].get(0, {}).get("final"),
            "held_out_mean": float(np.mean(held_out)) if held_out else None,
            # None when no seed has a periodic evaluation (e.g. eval_interval past the budget)
            "late_mean": float(np.mean(list(late.values()))) if late else None,
            "late_std": float(np.std(list(late.values()))) if late else None,
            "late_per_seed": late,
        }
        if len(finals) >= 2:  # an interval needs two seeds at least
            summary[key]["intervals"] = summarize_runs(finals).to_dict()
    targets = evaluate_targets(summary, behaviour_score)
    results = {
        "score_reference": reference,
        "note": note,
        "behaviour": behaviour,
        "behaviour_score": behaviour_score,
        "dataset": dataset_record,
        "gradient_steps": gradient_steps,
        "runs": runs,
        "summary": summary,
        "targets": targets,
        "jobs": len(jobs),
        "finished": sum(e["n"] for e in summary.values()),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "table.md").write_text(_table(summary, targets, behaviour_score, note, results))
    if runs:
        _plot(runs, behaviour_score, out / "curves.png", reference["normalized"])
        _plot_profiles(runs, out / "profile.png", reference["normalized"])
    return results


#: how many of the last periodic evaluations :func:`late_score` averages
LATE_EVALUATIONS = 5


def late_score(curve: dict[int, float]) -> float:
    """The mean of a run's last :data:`LATE_EVALUATIONS` periodic evaluations (with the defaults,
    100k steps evaluated every 10k: 60k–100k), or of all of them when there are fewer; NaN for an
    empty curve. The curves swing between near-zero and expert-level scores from one evaluation to
    the next, so a single final score depends on where a swing ends; this secondary statistic is
    steadier. The targets stay on the final scores."""
    steps = sorted(curve)[-LATE_EVALUATIONS:]
    return float(np.mean([curve[t] for t in steps])) if steps else float("nan")


def _key(job: dict[str, Any]) -> str:
    """The report's name of ``job``'s configuration: ``<agent>/<data>``."""
    return f"{job['agent']}/{job['data']}"


def _entry(runs: dict[str, dict[str, Any]], job: dict[str, Any]) -> dict[str, Any]:
    """The report's entry of ``job``'s configuration, created empty if new."""
    return runs.setdefault(
        _key(job),
        {
            "agent": job["agent"],
            "data": job["data"],
            "kwargs": job["kwargs"],
            "data_identity": job["data_identity"],
            "seeds": {},
        },
    )


def _merge_recorded(
    runs: dict[str, dict[str, Any]],
    jobs: list[dict[str, Any]],
    previous: Path,
    reference: dict[str, Any],
    gradient_steps: int,
    behaviour_score: float,
) -> None:
    """Add to ``runs`` the (configuration, seed) results an earlier report recorded in ``previous``
    whose run dirs are not on this machine (the experiment spans sittings, run dirs are never
    committed). Only results of the same budget, reference scores, hyperparameters and data count:
    each configuration's recorded ``data_identity`` (dataset fingerprint, attack, corruption
    settings) must equal the job's. A report written before identities were recorded matches on
    the data's exact mean episode score instead, with the only corruption settings those reports
    used (:data:`LEGACY_CORRUPTION`)."""
    if not previous.exists():
        return
    old = json.loads(previous.read_text())
    if old.get("gradient_steps") != gradient_steps or old.get("score_reference") != reference:
        return
    skipped = set()
    for job in jobs:
        seed = str(job["seed"])
        recorded = old.get("runs", {}).get(_key(job))
        if recorded is None or recorded.get("kwargs") != job["kwargs"] or seed not in recorded["seeds"]:
            continue
        if "data_identity" in recorded:
            same_data = recorded["data_identity"] == job["data_identity"]
        else:
            legacy = (job["rate"], job["scale"]) == LEGACY_CORRUPTION
            same_data = old.get("behaviour_score") == behaviour_score and (job["data"] == "clean" or legacy)
        if not same_data:
            skipped.add(_key(job))
            continue
        entry = _entry(runs, job)
        if job["seed"] not in entry["seeds"]:
            result = recorded["seeds"][seed]
            entry["seeds"][job["seed"]] = {
                "final": float(result["final"]),
                "curve": {int(step): float(v) for step, v in result["curve"].items()},
                "source": "recorded in an earlier results.json",
            }
    if skipped:
        print(f"not merging {', '.join(sorted(skipped))} from {previous}: recorded on other data")


def _plot_profiles(runs: dict[str, dict[str, Any]], path: Path, normalized: bool) -> None:
    """IQL vs RIQL: performance profiles over the (seed, dataset) pairs both have finished."""
    from rlrobust.evaluation.stats import plot_performance_profiles

    agents = ("iql", "riql")
    datasets = sorted(
        {e["data"] for e in runs.values() if e["agent"] == agents[0]}
        & {e["data"] for e in runs.values() if e["agent"] == agents[1]}
    )
    if not datasets:
        return
    seeds = sorted(set.intersection(*(set(runs[f"{a}/{d}"]["seeds"]) for a in agents for d in datasets)))
    if len(seeds) < 2:  # bands need two seeds
        return
    scores = {
        a: np.array([[runs[f"{a}/{d}"]["seeds"][s]["final"] for d in datasets] for s in seeds])
        for a in agents
    }
    plot_performance_profiles(
        scores,
        path,
        xlabel="normalized score" if normalized else "return",
        title=f"IQL vs RIQL over (seed, dataset): {', '.join(datasets)}",
    )


def evaluate_targets(summary: dict[str, dict[str, Any]], behaviour_score: float) -> dict[str, Any]:
    """The targets on the mean final scores: IQL/IDQL ≥ the behaviour score on clean data;
    per attack, RIQL keeps ≥ 80 % of its clean score and loses ≤ half of IQL's points.

    Keeping 80 % of a clean score that never learned is no robustness, so an attack's target is
    ``met`` only when RIQL's clean score reaches the behaviour score too (``riql_clean_learned``)."""
    mean = {k: v["mean"] for k, v in summary.items()}
    out: dict[str, Any] = {}
    for agent in ("iql", "idql"):
        if f"{agent}/clean" in mean:
            out[f"{agent}_reaches_behaviour"] = {
                "score": mean[f"{agent}/clean"],
                "behaviour": behaviour_score,
                "met": mean[f"{agent}/clean"] >= behaviour_score,
            }
    for attack in ATTACKS:
        keys = ("riql/clean", f"riql/{attack}", "iql/clean", f"iql/{attack}")
        if all(k in mean for k in keys):
            riql_drop = mean["riql/clean"] - mean[f"riql/{attack}"]
            iql_drop = mean["iql/clean"] - mean[f"iql/{attack}"]
            out[attack] = {
                "riql_kept": mean[f"riql/{attack}"] / mean["riql/clean"] if mean["riql/clean"] else None,
                "riql_drop": riql_drop,
                "iql_drop": iql_drop,
                "kept_80": mean[f"riql/{attack}"] >= 0.8 * mean["riql/clean"],
                "half_of_iql_drop": riql_drop <= 0.5 * max(iql_drop, 0.0),
                "riql_clean_learned": mean["riql/clean"] >= behaviour_score,
            }
            out[attack]["met"] = all(
                out[attack][k] for k in ("kept_80", "half_of_iql_drop", "riql_clean_learned")
            )
    return out


def _table(
    summary: dict[str, Any],
    targets: dict[str, Any],
    behaviour_score: float,
    note: str,
    results: dict[str, Any],
) -> str:
    lines = [
        f"Normalized scores after {results['gradient_steps']} gradient steps ({note}); behaviour data "
        f"{behaviour_score:.1f}. Finished runs: {results['finished']} of {results['jobs']}.",
        "",
        "| agent | data | seed 0 | held-out seeds (mean) | all seeds mean ± std | IQM [95% CI] | n "
        f"| last {LATE_EVALUATIONS} evaluations, mean ± std |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(summary, key=lambda k: (k.split("/")[1] != "clean", k.split("/")[1], k)):
        s = summary[key]
        agent, data = key.split("/")
        fmt = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
        iv = s.get("intervals")
        iqm = "–" if iv is None else f"{iv['iqm']:.1f} [{iv['iqm_ci'][0]:.1f}, {iv['iqm_ci'][1]:.1f}]"
        late = "–" if s.get("late_mean") is None else f"{s['late_mean']:.1f} ± {s['late_std']:.1f}"
        lines.append(
            f"| {agent} | {data} | {fmt(s['seed0'])} | {fmt(s['held_out_mean'])} | "
            f"{s['mean']:.1f} ± {s['std']:.1f} | {iqm} | {s['n']} | {late} |"
        )
    lines += [
        "",
        "The targets are on the final scores (the final evaluation at the budget); the last column averages "
        f"each run's last {LATE_EVALUATIONS} periodic evaluations, a steadier secondary statistic.",
    ]
    lines += ["", "Targets:", ""]
    lines += [f"- {k}: {json.dumps(v)}" for k, v in targets.items()] or ["- none evaluable yet"]
    return "\n".join(lines) + "\n"


def _plot(runs: dict[str, dict[str, Any]], behaviour_score: float, path: Path, normalized: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["clean", *[a for a in ATTACKS if any(e["data"] == a for e in runs.values())]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for entry in (e for e in runs.values() if e["data"] == panel):
            steps = sorted(set.intersection(*(set(s["curve"]) for s in entry["seeds"].values())))
            values = np.array([[s["curve"][t] for t in steps] for s in entry["seeds"].values()])
            mean, std = values.mean(0), values.std(0)
            ax.plot(steps, mean, label=f"{entry['agent']} (n={len(values)})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.axhline(behaviour_score, color="k", ls="--", lw=1, label="behaviour data")
        ax.set_title(panel if panel == "clean" else f"30% {panel}")
        ax.set_xlabel("gradient steps")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("normalized score" if normalized else "return")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- CLI
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed", help=speed.__doc__.split("\n")[0])
    sp.add_argument("--steps", type=int, default=100)
    sp.add_argument("--repeats", type=int, default=5)
    sp.add_argument("--batch-size", type=int, default=256)
    sp.add_argument("--idql-baseline", default="1065904", help="git ref of the IDQL baseline ('' to skip)")
    dp = sub.add_parser("dataset", help=offline_dataset.__doc__.split("\n")[0])
    dp.add_argument("--workdir", default="runs/offline")
    dp.add_argument("--dataset-id", default="rlrobust/hopper-v5/medium-v0")
    dp.add_argument("--replay-id", default="rlrobust/hopper-v5/medium-replay-v0")
    dp.add_argument("--min-transitions", type=int, default=200_000)
    ep = sub.add_parser("experiment", help=offline.__doc__.split("\n")[0])
    ep.add_argument("--dataset", default="rlrobust/hopper-v5/medium-v0")
    ep.add_argument("--workdir", default="runs/offline")
    ep.add_argument("--out", default="docs/results/offline_hopper")
    ep.add_argument("--gradient-steps", type=int, default=100_000)
    ep.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ep.add_argument("--attacks", nargs="+", default=list(ATTACKS))
    ep.add_argument("--agents", nargs="+", default=list(CLEAN_AGENTS))
    ep.add_argument("--eval-interval", type=int, default=10_000)
    ep.add_argument("--eval-episodes", type=int, default=5, help="per periodic evaluation (the curves)")
    ep.add_argument("--final-eval-episodes", type=int, default=10, help="the final score")
    ep.add_argument("--workers", type=int, default=2)
    ep.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "speed":
        result = speed(args.steps, args.repeats, args.batch_size, idql_baseline=args.idql_baseline)
    elif args.cmd == "dataset":
        result = offline_dataset(args.workdir, args.dataset_id, args.replay_id, args.min_transitions)
    else:
        result = offline(
            args.dataset,
            args.workdir,
            args.out,
            gradient_steps=args.gradient_steps,
            seeds=tuple(args.seeds),
            attacks=tuple(args.attacks),
            agents=tuple(args.agents),
            eval_interval=args.eval_interval,
            eval_episodes=args.eval_episodes,
            final_eval_episodes=args.final_eval_episodes,
            workers=args.workers,
            report_only=args.report_only,
        )
        result = {k: result[k] for k in ("note", "summary", "targets", "finished", "jobs")}
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
