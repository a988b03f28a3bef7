"""Core-loop overhead (``benchmark.py core-loop``): what the training loop itself costs per env step.

1. ``constant``: a constant-action agent (the required :class:`~rlrobust.core.interfaces.Agent`
   protocol only; ``act`` returns action 0, ``update`` is never called) trained by
   :class:`~rlrobust.core.trainer.Trainer` on CartPole-v1 (one env, no evaluation, only the final
   checkpoint) against a bare ``env.step`` loop (reset at episode ends) over the same number of
   steps, in the same process, alternated; the ratio of their wall times is the loop's overhead.
2. ``rvi_q``: robust RVI Q-learning through ``rlrobust.train`` on Garnet(6, 3, 3) with the agent's
   defaults (contamination set, one update of batch 32 per env step): env steps/s of the whole
   call (``rvi_q``, set-up included) and during training (``rvi_q_training``: a run of
   ``rvi_steps`` minus a run of ``rvi_steps // 10``, so the set-up cancels out).

Rates are medians over ``repeats``; the process-CPU-time rates are reported too (steadier on a
shared machine). Usage: ``OMP_NUM_THREADS=1 python benchmarks/benchmark.py core-loop [--steps N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from timing import Timer


@dataclasses.dataclass
class ConstantConfig:
    """Schedule fields only: the trainer reads these; ``train_freq`` is set past the run's end."""

    batch_size: int = 32
    learning_starts: int = 0
    train_freq: int = 10**9
    gradient_steps: int = 1
    buffer_size: int = 10_000


class ConstantAgent:
    """The smallest :class:`~rlrobust.core.interfaces.Agent`: always action 0, nothing to learn."""

    name: ClassVar[str] = "constant"
    Config: ClassVar[type] = ConstantConfig
    offline: ClassVar[bool] = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, buffer_size: int) -> None:
        self.config = ConstantConfig(buffer_size=buffer_size)
        self.observation_space, self.action_space = observation_space, action_space
        self.device = torch.device("cpu")
        self.num_updates = 0

    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)

    def update(self, batch: Any) -> dict[str, float]:
        raise AssertionError("the core-loop benchmark never updates")

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Any) -> None:
        pass


def bare_loop(steps: int, seed: int = 0) -> None:
    """``steps`` env steps of CartPole-v1 with action 0, resetting at episode ends."""
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()
    env.close()


def trainer_loop(steps: int, seed: int = 0) -> None:
    """``steps`` env steps of the constant agent through the Trainer (no eval, final checkpoint only)."""
    from rlrobust.core.trainer import Trainer, TrainerSettings

    env_fn = lambda: gym.make("CartPole-v1")  # noqa: E731
    probe = env_fn()
    agent = ConstantAgent(probe.observation_space, probe.action_space, buffer_size=steps)
    probe.close()
    settings = TrainerSettings(
        total_steps=steps,
        seed=seed,
        num_envs=1,
        progress=False,
        eval_interval=0,
        final_eval_episodes=0,
        checkpoint_interval=0,
    )
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(agent, env_fn, settings, run_dir).run()


def rvi_q_loop(steps: int, seed: int = 0) -> None:
    """Robust RVI Q-learning through ``rlrobust.train`` on Garnet(6, 3, 3) (contamination set)."""
    import rlrobust
    from rlrobust.envs.tabular import garnet

    with tempfile.TemporaryDirectory() as run_dir:
        rlrobust.train(
            "robust_rvi_q",
            lambda: garnet(6, 3, 3, seed=0),
            total_steps=steps,
            seed=seed,
            run_dir=run_dir,
            final_eval_episodes=0,
            checkpoint_interval=0,
            progress=False,
        )


def _rates(fns: dict[str, Any], steps: int, repeats: int) -> dict[str, Any]:
    """Steps/s of each function, alternated within each repeat; medians (wall and process CPU)."""
    for fn in fns.values():  # warm-up: imports, first-call caches
        fn(min(steps, 500))
    rates: dict[str, list[float]] = {f"{k}{s}": [] for k in fns for s in ("", "_cpu")}
    for _ in range(repeats):
        for name, fn in fns.items():
            with Timer() as t:
                fn(steps)
            rates[name].append(steps / t.wall)
            rates[f"{name}_cpu"].append(steps / t.cpu)
    return {k: statistics.median(v) for k, v in rates.items()} | {"all": rates}


def core_loop(
    steps: int = 20_000, rvi_steps: int = 20_000, repeats: int = 3, seed: int = 0
) -> dict[str, Any]:
    """The constant agent through the Trainer vs the bare env loop, and robust RVI Q-learning's
    env steps/s; see the module docstring."""
    torch.set_num_threads(1)
    out = _rates(
        {"bare": lambda n: bare_loop(n, seed), "trainer": lambda n: trainer_loop(n, seed)}, steps, repeats
    )
    out["ratio"] = out["bare"] / out["trainer"]  # wall time of the trainer / of the bare loop
    out["ratio_cpu"] = out["bare_cpu"] / out["trainer_cpu"]
    short = rvi_steps // 10
    walls: dict[str, list[float]] = {"long": [], "short": []}
    rvi_q_loop(short, seed)  # warm-up
    for _ in range(repeats):
        for name, n in (("long", rvi_steps), ("short", short)):
            with Timer() as t:
                rvi_q_loop(n, seed)
            walls[name].append(t.wall)
    out.update(
        rvi_q=statistics.median(rvi_steps / w for w in walls["long"]),
        rvi_q_training=statistics.median(
            (rvi_steps - short) / (w - w_short) for w, w_short in zip(walls["long"], walls["short"])
        ),
        rvi_q_walls=walls,
        settings=dict(
            env="CartPole-v1",
            steps=steps,
            num_envs=1,
            repeats=repeats,
            torch_threads=1,
            rvi_q=dict(
                env="garnet(6, 3, 3, seed=0)", steps=rvi_steps, agent="conf/agent/robust_rvi_q.yaml defaults"
            ),
        ),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rvi-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(core_loop(args.steps, args.rvi_steps, args.repeats, args.seed), indent=1))


if __name__ == "__main__":
    main()
