"""Offline-RL benchmarks for IDQL and RIQL (to be folded into scripts/benchmark.py).

* :func:`speed`: gradient steps/s of ``agent.update`` on batches of 256 Hopper-shaped transitions
  (obs 11, act 3), default networks, one torch thread, after a warm-up.
* :func:`train_behaviour`: an SB3 SAC behaviour policy, saved every ``chunk`` steps until it
  reaches a target return (the issue asks for a medium-quality one, about a third of expert).
* :func:`offline_experiment`: the issue's Hopper-v5 experiment as one function at any budget:
  record a dataset from a behaviour policy (rlrobust checkpoint or SB3 zip) with
  :func:`rlrobust.data.record_dataset`, optionally corrupt it (RIQL protocol), train IDQL, RIQL and
  plain IQL through ``rlrobust.train`` (the same offline trainer as the CLI), and report normalized
  scores next to the behaviour policy's. Full budget: ``episodes`` ≈ 100 (medium policy),
  ``gradient_steps`` 1e6, 3 seeds, corruption ``rewards``/``dynamics`` at rate 0.3.

Usage: ``OMP_NUM_THREADS=1 python scripts/bench_offline.py speed --steps 200`` or
``... experiment --policy <ckpt|zip> --env Hopper-v5 --episodes 100 --gradient-steps 1000000``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlrobust
from rlrobust.agents.riql import IQL_BASELINE
from rlrobust.core.episodes import run_episodes
from rlrobust.core.types import TransitionBatch
from rlrobust.data import D4RL_REF_SCORES, corrupt, normalized_score, record_dataset


def speed(agent: str, *, steps: int = 200, warmup: int = 20, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """Gradient steps/s (wall and CPU) of ``agent.update`` with default networks on one thread."""
    torch.set_num_threads(1)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (11,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    ag = rlrobust.make_agent(agent, obs_space, act_space, seed=seed)
    g = torch.Generator().manual_seed(seed)
    batches = [
        TransitionBatch(torch.randn(batch_size, 11, generator=g), torch.rand(batch_size, 3, generator=g) * 2 - 1,
                        torch.randn(batch_size, generator=g), torch.randn(batch_size, 11, generator=g),
                        (torch.rand(batch_size, generator=g) < 0.01).float(), torch.full((batch_size,), 0.99))
        for _ in range(8)
    ]
    for i in range(warmup):
        ag.update(batches[i % 8])
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        ag.update(batches[i % 8])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"agent": agent, "batch_size": batch_size, "steps": steps, "steps_per_s": steps / wall,
            "steps_per_cpu_s": steps / cpu}


def train_behaviour(env_id: str = "Hopper-v5", *, target_return: float = 1000.0, max_steps: int = 200_000,
                    chunk: int = 10_000, seed: int = 0, out_dir: str | Path = ".") -> list[dict[str, Any]]:
    """A behaviour policy for :func:`offline_experiment`: SB3 SAC (its defaults, 2×256) trained in
    ``chunk``-step pieces, each saved as ``sac_<env>_<steps>.zip`` and scored on 5 deterministic
    episodes (reset seeds 500–504); stops at the first score ≥ ``target_return`` or ``max_steps``."""
    from stable_baselines3 import SAC

    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    torch.set_num_threads(1)
    model = SAC("MlpPolicy", gym.make(env_id), device="cpu", seed=seed, verbose=0,
                learning_starts=min(10_000, chunk), policy_kwargs={"net_arch": [256, 256]})
    env, history = gym.make(env_id), []
    while model.num_timesteps < max_steps:
        model.learn(chunk, reset_num_timesteps=False)
        returns, _ = run_episodes(env, lambda obs: model.predict(obs, deterministic=True)[0], [500 + k for k in range(5)])
        path = Path(out_dir) / f"sac_{env_id.lower()}_{model.num_timesteps}.zip"
        model.save(path)
        history.append({"steps": model.num_timesteps, "return_mean": float(np.mean(returns)),
                        "return_std": float(np.std(returns)), "path": str(path)})
        print(json.dumps(history[-1]), flush=True)
        if history[-1]["return_mean"] >= target_return:
            break
    return history


def _train_one(name: str, kind: str | None, seed: int, data: Any, env_id: str, gradient_steps: int,
               kwargs: dict[str, Any], run_dir: Path, eval_episodes: int) -> dict[str, Any]:
    """One offline run (in a worker process when ``workers > 1``): train, then score."""
    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result = rlrobust.train("riql" if name == "iql" else name, env_id, total_steps=gradient_steps, seed=seed,
                            dataset=data, agent_kwargs=kwargs, run_dir=run_dir,
                            final_eval_episodes=eval_episodes, progress=False)
    ret = result.metrics["eval/return_mean"]
    score = normalized_score(ret, table=D4RL_REF_SCORES, env_id=env_id)
    return {"agent": name, "corruption": kind, "seed": seed, "return": ret, "score": score.score,
            "normalized": score.normalized, "seconds": time.perf_counter() - start}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean/std score per (agent, corruption) and each agent's drop from its clean score; for
    every corruption, RIQL's drop over IQL's (the issue asks for at most 0.5)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        groups.setdefault((run["agent"], str(run["corruption"])), []).append(run["score"])
    table = {f"{a}/{c}": {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
             for (a, c), v in sorted(groups.items())}
    drops: dict[str, float] = {}
    for (agent, kind), scores in groups.items():
        clean = groups.get((agent, "None"))
        if kind != "None" and clean:
            drops[f"{agent}/{kind}"] = float(np.mean(clean) - np.mean(scores))
    ratios = {kind: drops[f"riql/{kind}"] / drops[f"iql/{kind}"]
              for kind in {k.split("/")[1] for k in drops}
              if f"riql/{kind}" in drops and f"iql/{kind}" in drops and drops[f"iql/{kind}"] > 0}
    return {"scores": table, "drops": drops, "riql_over_iql_drop": ratios}


def offline_experiment(
    policy: Any,
    env_id: str = "Hopper-v5",
    *,
    episodes: int = 100,
    deterministic: bool = False,
    gradient_steps: int = 1_000_000,
    seeds: tuple[int, ...] = (0, 1, 2),
    agents: tuple[str, ...] = ("idql", "riql", "iql"),
    corruptions: tuple[str | None, ...] = (None, "rewards", "dynamics"),
    corrupted_agents: tuple[str, ...] = ("riql", "iql"),
    rate: float = 0.3,
    scale: float = 1.0,
    eval_episodes: int = 10,
    agent_kwargs: dict[str, dict[str, Any]] | None = None,
    workers: int = 1,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Record → (corrupt) → train offline → normalized score, per agent × corruption × seed.

    ``"iql"`` is RIQL with :data:`~rlrobust.agents.riql.IQL_BASELINE`. On corrupted data only
    ``corrupted_agents`` train (the RIQL-vs-IQL comparison). Actions are sampled from the
    behaviour policy unless ``deterministic`` (D4RL's medium datasets are sampled too). Scores use
    the D4RL table for the env's task (``normalized_score`` convention; Gymnasium v5 returns are not
    comparable with published D4RL numbers, only with each other and the behaviour policy).
    ``workers`` > 1 trains that many runs at once in spawned processes (one torch thread each).
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="bench_offline_"))
    dataset_id = f"bench/{env_id.lower()}/behaviour-s{seeds[0]}-v0"
    data = record_dataset(policy, env_id, dataset_id=dataset_id, episodes=episodes, seed=1000,
                          deterministic=deterministic, overwrite=True)
    behaviour = normalized_score(data.episode_returns(), table=D4RL_REF_SCORES, env_id=env_id)
    results: dict[str, Any] = {"env": env_id, "episodes": episodes, "transitions": len(data),
                               "deterministic_behaviour": deterministic, "gradient_steps": gradient_steps,
                               "rate": rate, "scale": scale, "behaviour_score": behaviour.score,
                               "normalized": behaviour.normalized, "convention": behaviour.convention}
    jobs = []
    for kind in corruptions:
        ds = data if kind is None else corrupt(data, kind=kind, rate=rate, scale=scale, seed=0)
        for name in agents if kind is None else [a for a in agents if a in corrupted_agents]:
            kwargs = dict(IQL_BASELINE) if name == "iql" else {}
            kwargs.update((agent_kwargs or {}).get(name, {}))
            for seed in seeds:
                jobs.append((name, kind, seed, ds, env_id, gradient_steps, kwargs,
                             workdir / f"{name}-{kind}-s{seed}", eval_episodes))
    jobs.sort(key=lambda job: job[0] != "idql")  # the slowest first: better packing over workers
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(_train_one, *zip(*jobs)))
    else:
        runs = [_train_one(*job) for job in jobs]
    results["runs"] = runs
    results["summary"] = summarize(runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--steps", type=int, default=200)
    sp.add_argument("--agents", nargs="+", default=["idql", "riql"])
    bp = sub.add_parser("behaviour")
    bp.add_argument("--env", default="Hopper-v5")
    bp.add_argument("--target-return", type=float, default=1000.0)
    bp.add_argument("--max-steps", type=int, default=200_000)
    bp.add_argument("--chunk", type=int, default=10_000)
    bp.add_argument("--out-dir", default=".")
    ex = sub.add_parser("experiment")
    ex.add_argument("--policy", required=True)
    ex.add_argument("--env", default="Hopper-v5")
    ex.add_argument("--episodes", type=int, default=100)
    ex.add_argument("--gradient-steps", type=int, default=1_000_000)
    ex.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ex.add_argument("--agents", nargs="+", default=["idql", "riql", "iql"])
    ex.add_argument("--eval-episodes", type=int, default=10)
    ex.add_argument("--corruptions", nargs="+", default=["none", "rewards", "dynamics"],
                    help="none = the clean dataset")
    ex.add_argument("--deterministic", action="store_true", help="record the behaviour's mean actions")
    ex.add_argument("--workers", type=int, default=1)
    ex.add_argument("--workdir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "behaviour":
        train_behaviour(args.env, target_return=args.target_return, max_steps=args.max_steps, chunk=args.chunk,
                        out_dir=args.out_dir)
    elif args.cmd == "speed":
        for name in args.agents:
            print(json.dumps(speed(name, steps=args.steps)))
    else:
        print(json.dumps(offline_experiment(args.policy, args.env, episodes=args.episodes,
                                            gradient_steps=args.gradient_steps, seeds=tuple(args.seeds),
                                            agents=tuple(args.agents), eval_episodes=args.eval_episodes,
                                            corruptions=tuple(None if c == "none" else c for c in args.corruptions),
                                            deterministic=args.deterministic, workers=args.workers,
                                            workdir=args.workdir), indent=2))


if __name__ == "__main__":
    main()
