"""Benchmarks of the robust tabular stack (``benchmark.py robust``).

1. Exact robust relative value iteration with the KL set on Garnet(S=200, A=10): seconds.
2. Model-free robust RVI Q-learning throughput: (s, a) updates per second across a batch of
   independent copies, with ``BatchedTabularMDP`` stepping on the same device (ε-greedy rollouts,
   one transition per copy per step; next-state samples for σ̂ from the generative model).

Usage: ``python benchmarks/bench_robust.py [--device cuda] [--copies N] [--steps N] [--repeats N]``
(one torch thread by default; each set is measured ``--repeats`` times).
"""

from __future__ import annotations

import argparse
import json

import torch
from timing import Timer

from rlrobust.agents.robust_rvi_q import estimate_next_values, update_tables
from rlrobust.envs.tabular import BatchedTabularMDP, garnet
from rlrobust.robust import make_kernel_set, robust_relative_value_iteration


def bench_exact_rvi(
    n_states: int = 200,
    n_actions: int = 10,
    branching: int = 10,
    radius: float = 0.1,
    set_name: str = "kl",
    seed: int = 0,
) -> dict[str, float]:
    """Wall-clock seconds of exact robust relative value iteration (tol 1e-9) on one Garnet."""
    env = garnet(n_states, n_actions, branching, seed=seed)
    ks = make_kernel_set(set_name, radius)
    with Timer() as t:
        gain, _, _ = robust_relative_value_iteration(env.P, env.R, ks)
    return {
        "seconds": t.wall,
        "gain": gain,
        "S": n_states,
        "A": n_actions,
        "branching": branching,
        "radius": radius,
    }


def bench_rvi_q(
    copies: int = 100_000,
    steps: int = 50,
    set_name: str = "contamination",
    radius: float = 0.1,
    n_states: int = 6,
    n_actions: int = 3,
    branching: int = 3,
    device: str = "cpu",
    exploration_rate: float = 0.1,
) -> dict[str, float]:
    """Updates per second of vectorised robust RVI Q-learning over ``copies`` independent copies."""
    env = garnet(n_states, n_actions, branching, seed=0)
    batched = BatchedTabularMDP(env.P, env.R, copies, device=device, seed=0)
    model, gen = batched.generative_model(), batched.generator
    ks = make_kernel_set(set_name, radius)
    q = torch.zeros(copies, n_states, n_actions, dtype=torch.float64, device=device)
    counts = torch.zeros_like(q)
    row_offset = torch.arange(copies, device=device) * n_states

    def one_step() -> None:
        s = batched.states
        greedy = q.view(-1, n_actions).index_select(0, row_offset + s).argmax(-1)
        explore = torch.rand(copies, generator=gen, device=device) < exploration_rate
        a = torch.where(explore, torch.randint(n_actions, (copies,), generator=gen, device=device), greedy)
        _, r, _, _ = batched.step(a)
        s, a = s.unsqueeze(1), a.unsqueeze(1)
        sigma = estimate_next_values(ks, q, s, a, model, gen)
        update_tables(q, counts, s, a, r.unsqueeze(1), sigma)

    batched.reset()
    for _ in range(3):  # warm-up
        one_step()
    if device != "cpu":
        torch.cuda.synchronize()
    with Timer() as t:
        for _ in range(steps):
            one_step()
        if device != "cpu":
            torch.cuda.synchronize()
    seconds = t.wall
    return {
        "updates_per_second": copies * steps / seconds,
        "seconds": seconds,
        "copies": copies,
        "steps": steps,
        "set": set_name,
        "device": device,
        "S": n_states,
        "A": n_actions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--copies", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sets", default="contamination,tv,chi2,kl,wasserstein")
    parser.add_argument("--radius", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=2, help="measurements per set (shared machines are noisy)"
    )
    parser.add_argument("--skip-exact", action="store_true", help="skip the exact robust RVI timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_exact:
        print(json.dumps({"exact_rvi_kl": bench_exact_rvi()}))
    for name in args.sets.split(","):
        for _ in range(args.repeats):
            result = bench_rvi_q(args.copies, args.steps, name, args.radius, device=args.device)
            print(json.dumps({"rvi_q": {**result, "threads": args.threads}}), flush=True)


if __name__ == "__main__":
    main()
