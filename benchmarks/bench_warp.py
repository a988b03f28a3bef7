"""Benchmark: the MuJoCo Warp backend against CPU MuJoCo, on whatever Warp device is present.

Two measurements, both with the zero policy (the cheapest action, so physics dominates):

* **world-steps/s vs nworld**: ``WarpVectorEnv("Hopper-v5", W).step`` on zero actions, after a
  warm-up step (kernels loaded); world control steps per second (each is ``frame_skip`` = 4
  physics steps). The CPU peer is one bare ``gym.make("Hopper-v5")`` stepped in this process.
* **suite evaluation**: ``rlrobust.evaluate(zeros, "hopper-2d", episodes=5)`` on the full 10x10
  grid (500 episodes) with ``backend="warp"`` (one simulation of 500 worlds) and with the CPU
  backend (``workers`` processes); same process, alternating, minimum over repeats.

    OMP_NUM_THREADS=1 python benchmarks/benchmark.py warp                           # CPU device
    python benchmarks/benchmark.py warp --device cuda --nworld 1024 4096 16384       # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import Timer  # noqa: E402

import rlrobust  # noqa: E402
from rlrobust.envs.mujoco_params import silence_mujoco_warnings  # noqa: E402
from rlrobust.interop.policies import ConstantPolicy  # noqa: E402


def world_steps(env_id: str, nworld: int, steps: int, device: str) -> dict[str, float]:
    """Control steps x worlds per second of the batched env (kernels already loaded by a warm-up step)."""
    from rlrobust.envs.batched.warp_env import WarpVectorEnv

    env = WarpVectorEnv(env_id, nworld, device=device, max_episode_steps=10**9)
    env.reset(seed=0)
    zeros = torch.zeros(env.action_space.shape, device=env.torch_device)
    env.step(zeros)  # warm-up: loads (or compiles) the kernels
    with Timer() as t:
        for _ in range(steps):
            env.step(zeros)
        torch.cuda.synchronize() if env.torch_device.type == "cuda" else None
    seconds = t.wall
    env.close()
    rate = nworld * steps / seconds
    return {
        "nworld": nworld,
        "steps": steps,
        "seconds": round(seconds, 3),
        "world_steps_per_s": round(rate, 1),
        "physics_steps_per_s": round(rate * env.task.frame_skip, 1),
    }


def cpu_env_steps(env_id: str, steps: int) -> float:
    """Steps/s of one bare Gymnasium env on zero actions (autoreset by hand)."""
    silence_mujoco_warnings()
    env = gym.make(env_id)
    env.reset(seed=0)
    zeros = np.zeros(env.action_space.shape, np.float32)
    with Timer() as t:
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(zeros)
            if terminated or truncated:
                env.reset()
    return steps / t.wall


def suite_times(suite: str, episodes: int, device: str, workers: int, repeats: int) -> dict[str, Any]:
    """Wall-clock seconds of the whole suite evaluation, each backend, minimum over repeats."""
    from rlrobust.envs.suites import get_suite

    silence_mujoco_warnings()
    policy = ConstantPolicy(np.zeros(gym.make(get_suite(suite).env_id).action_space.shape, np.float32))
    times: dict[str, float] = {}
    results = {}
    for _ in range(repeats):
        for backend in ("warp", "cpu"):
            with Timer() as t:
                results[backend] = rlrobust.evaluate(
                    policy, suite, episodes=episodes, backend=backend, device=device, workers=workers
                )
            times[backend] = min(times.get(backend, np.inf), t.wall)
    gap = np.abs(results["warp"].returns - results["cpu"].returns).max()
    return {
        "suite": suite,
        "episodes": episodes,
        "worlds": int(results["cpu"].returns.size),
        "steps": int(results["cpu"].lengths.sum()),
        "workers_cpu": workers,
        "repeats": repeats,
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "warp_over_cpu": round(times["warp"] / times["cpu"], 2),
        "max_return_gap": float(gap),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="Warp device: cpu, cuda, cuda:1")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--nworld", type=int, nargs="+", default=[1, 64, 512, 2048, 4096])
    parser.add_argument("--steps", type=int, default=3, help="timed control steps per nworld")
    parser.add_argument("--suite", default="hopper-2d")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="CPU backend processes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-suite", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict[str, Any] = {"device": args.device, "env": args.env, "load_average": os.getloadavg()}
    out["cpu_mujoco_steps_per_s"] = round(cpu_env_steps(args.env, 5000), 1)
    out["warp"] = [world_steps(args.env, w, args.steps, args.device) for w in args.nworld]
    print(json.dumps(out, indent=2), flush=True)
    if not args.skip_suite:
        out["suite"] = suite_times(args.suite, args.episodes, args.device, args.workers, args.repeats)
        out["load_average_end"] = os.getloadavg()
        print(json.dumps(out["suite"], indent=2))


if __name__ == "__main__":
    main()
