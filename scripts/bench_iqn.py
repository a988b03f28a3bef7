"""IQN vs sb3-contrib QR-DQN: environment steps per second on CartPole-v1, same process, one thread.

Both learners run the same schedule: ``learning_starts`` uniformly random actions, then one
gradient step of batch ``batch_size`` per environment step, ``net_arch`` hidden layers,
``N = N′ = n_quantiles`` (IQN also uses ``K = n_quantiles`` fractions to pick actions).
QR-DQN runs through its own ``learn()``; IQN through :func:`iqn_loop`, a minimal loop (one
gymnasium env and a NumPy replay buffer) so the number measures the agent, not a trainer.
Runs alternate (QR-DQN, IQN, QR-DQN, IQN, …) to spread machine noise over both; the report
gives each learner's median rate and the ratio of medians, by wall clock and by this process's
CPU time (``time.process_time``; the steadier of the two on a shared, loaded machine).

Usage: ``OMP_NUM_THREADS=1 python scripts/bench_iqn.py [total_steps] [n_quantiles] [repeats]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlrobust
from rlrobust.core.types import TransitionBatch


def iqn_loop(
    agent: Any, env: gym.Env, *, total_steps: int, learning_starts: int, batch_size: int, seed: int
) -> None:
    """Train ``agent`` for ``total_steps`` env steps with a minimal loop."""
    rng = np.random.default_rng(seed)
    obs_dim = env.observation_space.shape[0]
    cap = total_steps
    obs_buf = np.zeros((cap, obs_dim), np.float32)
    next_buf = np.zeros((cap, obs_dim), np.float32)
    act_buf = np.zeros(cap, np.int64)
    rew_buf = np.zeros(cap, np.float32)
    done_buf = np.zeros(cap, np.float32)
    discounts = torch.full((batch_size,), agent.config.gamma)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    for step in range(total_steps):
        if step < learning_starts:
            action = int(env.action_space.sample())
        else:
            agent.set_progress(step / total_steps)
            action = int(agent.act(obs[None])[0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        obs_buf[step], act_buf[step], rew_buf[step] = obs, action, reward
        next_buf[step], done_buf[step] = next_obs, float(terminated)
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= learning_starts:
            idx = rng.integers(0, step + 1, size=batch_size)
            agent.update(
                TransitionBatch(
                    observations=torch.from_numpy(obs_buf[idx]),
                    actions=torch.from_numpy(act_buf[idx]),
                    rewards=torch.from_numpy(rew_buf[idx]),
                    next_observations=torch.from_numpy(next_buf[idx]),
                    dones=torch.from_numpy(done_buf[idx]),
                    discounts=discounts,
                )
            )


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``fn(*args, **kwargs)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_iqn_vs_qrdqn(
    total_steps: int = 5_000,
    *,
    n_quantiles: int = 32,
    learning_starts: int = 1_000,
    batch_size: int = 64,
    net_arch: tuple[int, ...] = (256, 256),
    repeats: int = 1,
    seed: int = 0,
    iqn_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Env-steps/s of IQN and QR-DQN on CartPole-v1 with identical settings; see the module doc."""
    from sb3_contrib import QRDQN

    torch.set_num_threads(1)
    rates: dict[str, list[float]] = {"qrdqn": [], "iqn": [], "qrdqn_cpu": [], "iqn_cpu": []}
    for r in range(repeats):
        env = gym.make("CartPole-v1")
        model = QRDQN(
            "MlpPolicy",
            env,
            learning_starts=learning_starts,
            batch_size=batch_size,
            train_freq=1,
            gradient_steps=1,
            buffer_size=total_steps,
            device="cpu",
            seed=seed + r,
            verbose=0,
            policy_kwargs={"net_arch": list(net_arch), "n_quantiles": n_quantiles},
        )
        wall, cpu = _timed(model.learn, total_timesteps=total_steps)
        rates["qrdqn"].append(total_steps / wall)
        rates["qrdqn_cpu"].append(total_steps / cpu)

        env = gym.make("CartPole-v1")
        agent = rlrobust.make_agent(
            "iqn",
            env.observation_space,
            env.action_space,
            seed=seed + r,
            net_arch=list(net_arch),
            batch_size=batch_size,
            learning_starts=learning_starts,
            n_quantiles=n_quantiles,
            n_target_quantiles=n_quantiles,
            n_action_quantiles=n_quantiles,
            **(iqn_kwargs or {}),
        )
        wall, cpu = _timed(
            iqn_loop,
            agent,
            env,
            total_steps=total_steps,
            learning_starts=learning_starts,
            batch_size=batch_size,
            seed=seed + r,
        )
        rates["iqn"].append(total_steps / wall)
        rates["iqn_cpu"].append(total_steps / cpu)
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "env": "CartPole-v1",
        "total_steps": total_steps,
        "learning_starts": learning_starts,
        "batch_size": batch_size,
        "net_arch": list(net_arch),
        "n_quantiles": n_quantiles,
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "iqn_steps_per_s": med["iqn"],
        "qrdqn_steps_per_s": med["qrdqn"],
        "ratio": med["iqn"] / med["qrdqn"],
        "iqn_steps_per_cpu_s": med["iqn_cpu"],
        "qrdqn_steps_per_cpu_s": med["qrdqn_cpu"],
        "ratio_cpu": med["iqn_cpu"] / med["qrdqn_cpu"],
        "all_rates": rates,
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    steps, nq, reps = (args + [5_000, 32, 1][len(args) :])[:3]
    print(bench_iqn_vs_qrdqn(steps, n_quantiles=nq, repeats=reps))
