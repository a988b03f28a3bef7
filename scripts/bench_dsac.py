"""DSAC benchmarks (to be folded into scripts/benchmark.py).

* :func:`speed_dsac`, :func:`speed_sb3`: env steps/s during learning (after the warm-up) on one
  env, one process, one torch thread, identical settings: ``net_arch=[256, 256]``, batch 256,
  one gradient step per env step after ``warmup`` random steps.
* :func:`pendulum_learning`: mean deterministic evaluation return on Pendulum-v1 after
  ``total_steps`` env steps, per seed.

Usage: ``OMP_NUM_THREADS=1 python scripts/bench_dsac.py speed --learn-steps 1500`` or
``... pendulum --seeds 0 1 2 --total-steps 20000``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.collector import Collector, make_vector_env
from rlrobust.core.episodes import run_episodes
from rlrobust.core.registry import make_agent
from rlrobust.core.replay import ReplayBuffer
from rlrobust.evaluation import summarize_runs

#: the settings shared by every speed measurement (SB3 SAC's names)
SPEED_SETTINGS: dict[str, Any] = {
    "net_arch": [256, 256], "batch_size": 256, "train_freq": 1, "gradient_steps": 1,
}


def _run_dsac(env_id: str, total_steps: int, warmup: int, seed: int, agent_kwargs: dict[str, Any],
              mark_step: int | None = None) -> tuple[Any, float, float]:
    """Train DSAC with the library's Collector and ReplayBuffer.

    Returns ``(agent, wall seconds, CPU seconds)``, both counted from ``mark_step`` on.
    """
    env_fn = lambda: gym.make(env_id)  # noqa: E731
    collector = Collector(make_vector_env(env_fn, 1), gamma=agent_kwargs.get("gamma", 0.99), seed=seed)
    probe = env_fn()
    agent = make_agent("dsac", probe.observation_space, probe.action_space, seed=seed, **agent_kwargs)
    probe.close()
    buffer = ReplayBuffer(agent.config.buffer_size, seed=seed)
    batch_size = agent.config.batch_size
    start, cpu = time.perf_counter(), time.process_time()
    for step in range(total_steps):
        if step == mark_step:
            start, cpu = time.perf_counter(), time.process_time()
        collector.step(None if step < warmup else agent.act, buffer)
        if step + 1 >= warmup:
            agent.update(buffer.sample(batch_size))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    collector.close()
    return agent, seconds, cpu


def speed_dsac(env_id: str = "HalfCheetah-v5", warmup: int = 1000, learn_steps: int = 1500, seed: int = 0,
               **overrides: Any) -> dict[str, Any]:
    """DSAC env steps/s over ``learn_steps`` learning steps after ``warmup`` random steps."""
    kwargs = {**SPEED_SETTINGS, "learning_starts": warmup, "buffer_size": warmup + learn_steps, **overrides}
    _, seconds, cpu = _run_dsac(env_id, warmup + learn_steps, warmup, seed, kwargs, mark_step=warmup)
    return {"algo": "dsac", "env": env_id, "steps_per_s": learn_steps / seconds,
            "steps_per_cpu_s": learn_steps / cpu, "settings": kwargs}


def speed_sb3(algo: str = "sac", env_id: str = "HalfCheetah-v5", warmup: int = 1000, learn_steps: int = 1500,
              seed: int = 0) -> dict[str, Any]:
    """SB3 SAC / sb3-contrib TQC ``learn()`` env steps/s over the steps after ``warmup``."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    cls = SAC
    if algo == "tqc":
        from sb3_contrib import TQC

        cls = TQC

    class Clock(BaseCallback):
        t0 = cpu0 = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps == warmup:
                Clock.t0, Clock.cpu0 = time.perf_counter(), time.process_time()
            return True

    model = cls("MlpPolicy", gym.make(env_id), learning_starts=warmup, batch_size=256, train_freq=1,
                gradient_steps=1, buffer_size=warmup + learn_steps, policy_kwargs={"net_arch": [256, 256]},
                device="cpu", seed=seed, verbose=0)
    model.learn(total_timesteps=warmup + learn_steps, callback=Clock())
    seconds, cpu = time.perf_counter() - Clock.t0, time.process_time() - Clock.cpu0
    return {"algo": algo, "env": env_id, "steps_per_s": learn_steps / seconds,
            "steps_per_cpu_s": learn_steps / cpu,
            "settings": {**SPEED_SETTINGS, "learning_starts": warmup}}


def evaluate(agent: Any, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of the deterministic policy."""
    env = gym.make(env_id)
    returns, _ = run_episodes(env, lambda obs: agent.act(obs, deterministic=True),
                              [10_000 + seed * 100 + ep for ep in range(episodes)])
    env.close()
    return float(np.mean(returns))


def pendulum_learning(seeds: tuple[int, ...] = (0, 1, 2), total_steps: int = 20_000, eval_episodes: int = 5,
                      **overrides: Any) -> dict[str, Any]:
    """Pendulum-v1: evaluation return after ``total_steps`` env steps (1 update per step)."""
    kwargs = {"learning_starts": 1000, "net_arch": [256, 256], "activation": "relu", "learning_rate": 1e-3,
              "alpha_learning_rate": 1e-3, **overrides}
    results = {}
    for seed in seeds:
        t0 = time.perf_counter()
        agent, _, _ = _run_dsac("Pendulum-v1", total_steps, kwargs["learning_starts"], seed, kwargs)
        results[seed] = {"eval_return": evaluate(agent, "Pendulum-v1", eval_episodes, seed),
                         "seconds": time.perf_counter() - t0}
    finals = [r["eval_return"] for r in results.values()]
    summary = summarize_runs(finals).to_dict() if len(finals) > 1 else None  # IQM, 95% bootstrap CI
    return {"env": "Pendulum-v1", "total_steps": total_steps, "per_seed": results, "mean": float(np.mean(finals)),
            "over_seeds": summary, "settings": kwargs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["speed", "pendulum"])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--learn-steps", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the algorithms this many times")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=20_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "speed":
        rows = []
        for _ in range(args.rounds):  # alternate so load changes on a shared machine hit all alike
            rows.append(speed_sb3("sac", args.env, args.warmup, args.learn_steps))
            rows.append(speed_dsac(args.env, args.warmup, args.learn_steps, activation="relu"))
            rows.append(speed_sb3("tqc", args.env, args.warmup, args.learn_steps))
            rows.append(speed_dsac(args.env, args.warmup, args.learn_steps))  # official GELU
            for row in rows[-4:]:
                print(json.dumps(row), flush=True)
        summary = {}
        for measure in ("steps_per_s", "steps_per_cpu_s"):
            best: dict[str, float] = {}
            for row in rows:
                key = row["algo"]
                if key == "dsac":
                    key += "-" + row["settings"].get("activation", "gelu")
                best[key] = max(best.get(key, 0.0), row[measure])
            summary[f"best_{measure}"] = best
            summary[f"dsac_relu_over_sac_{measure}"] = best["dsac-relu"] / best["sac"]
        print(json.dumps(summary))
    else:
        print(json.dumps(pendulum_learning(tuple(args.seeds), args.total_steps, args.eval_episodes)))


if __name__ == "__main__":
    main()
