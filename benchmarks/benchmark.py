"""Benchmarks: speed side by side with the peers (same process, ratios in one run) and learning budgets.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/benchmark.py <name> [options]``; ``--help`` per name.

=================  =========================================================================
name               what it measures
=================  =========================================================================
iqn-speed          env-steps/s learning CartPole-v1: rlrobust IQN (trainer) vs sb3-contrib QR-DQN
iqn-learning       IQN on CartPole-v1: the final policy after 50k env steps, 5 seeds (resumable)
dsac-speed         env-steps/s learning HalfCheetah-v5: DSAC (trainer) vs SB3 SAC vs sb3-contrib TQC
dsac-profile       one DSAC update vs its networks' passes vs their matmuls vs SB3 SAC's update
dsac-pendulum      DSAC on Pendulum-v1: evaluation return after 20k env steps, 3 seeds
dsac-halfcheetah   DSAC or SB3 SAC on HalfCheetah-v5 for 100k env steps, one (algo, seed) per call
evaluation         suite evaluation cost vs stepping the bare env (benchmarks/bench_evaluation.py)
robust             exact robust RVI and robust RVI Q-learning throughput (benchmarks/bench_robust.py)
core-loop          the training loop's own cost: Trainer vs bare env.step loop, robust RVI Q steps/s (core_loop.py)
offline-speed      gradient steps/s: IQL, RIQL vs a plain CORL-style IQL loop; IDQL vs its earlier code
offline-dataset    the medium Hopper-v5 datasets from scratch: behaviour policy, medium, medium-replay
offline            BC/IQL/RIQL/IDQL on clean and 30%-corrupted Hopper data (benchmarks/bench_offline.py)
iwocs              IWOCS vs DSAC nominal vs DSAC domain-randomized (benchmarks/bench_iwocs.py)
warp               MuJoCo Warp backend: world-steps/s vs nworld, hopper-2d suite vs CPU (benchmarks/bench_warp.py)
risk               risk-averse IQN/DSAC acting under perturbation, resumable (benchmarks/bench_risk.py)
=================  =========================================================================

Speed runs alternate the two (or three) learners and repeat, reporting medians of wall-clock
rates and of process-CPU-time rates (the steadier one on a shared machine), with identical
settings: network, batch, update-to-data ratio, warm-up, distribution size, one torch thread.
Rates are env-steps/s *during learning*: a full run minus a warm-up-only run of each learner.
Our side runs through :class:`rlrobust.core.trainer.Trainer`, the same loop users train with
(collector, replay buffer, logging), not a stripped-down loop.

Over 500 lines: the dispatcher for every case above plus the IQN and DSAC speed and learning
cases, which share the SB3 reference runs, the trainer wrapper and the learning-curve helper; each
other benchmark lives in its own ``bench_*.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from presets import preset_agent
from timing import Timer, timed

HERE = Path(__file__).resolve().parent
# name -> (module, the sub-command it runs there, if any)
DELEGATED = {
    "evaluation": ("bench_evaluation", []),
    "robust": ("bench_robust", []),
    "core-loop": ("core_loop", []),
    "iwocs": ("bench_iwocs", []),
    "warp": ("bench_warp", []),
    "risk": ("bench_risk", []),
    "offline-speed": ("bench_offline", ["speed"]),
    "offline-dataset": ("bench_offline", ["dataset"]),
    "offline": ("bench_offline", ["experiment"]),
}


def _train_ours(agent_name: str, env_id: str, steps: int, seed: int, **agent_kwargs: Any) -> Any:
    """Train through the library's trainer with evaluation/checkpoints off (pure learning speed)."""
    import rlrobust
    from rlrobust.core.trainer import Trainer, TrainerSettings

    env_fn = lambda: gym.make(env_id)  # noqa: E731
    probe = env_fn()
    agent = rlrobust.make_agent(
        agent_name, probe.observation_space, probe.action_space, seed=seed, **agent_kwargs
    )
    probe.close()
    settings = TrainerSettings(
        total_steps=steps,
        seed=seed,
        progress=False,
        final_eval_episodes=0,
        checkpoint_interval=0,
        log_interval=10**9,
    )
    with tempfile.TemporaryDirectory() as run_dir:
        return Trainer(agent, env_fn, settings, run_dir).run().agent


def _speed_table(runs: dict[str, Any], steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Env-steps/s of each learner *during learning*: a run of ``steps`` minus a run of only the
    ``warmup`` steps (random actions, no updates), so set-up and warm-up cancel out. Learners
    alternate within each repeat; medians over repeats (wall clock and process CPU time)."""
    rates: dict[str, list[float]] = {f"{k}{s}": [] for k in runs for s in ("", "_cpu")}
    for _ in range(repeats):
        for name, fn in runs.items():
            wall, cpu = timed(fn, steps)
            wall_w, cpu_w = timed(fn, warmup)
            rates[name].append((steps - warmup) / (wall - wall_w))
            rates[f"{name}_cpu"].append((steps - warmup) / (cpu - cpu_w))
    return {k: statistics.median(v) for k, v in rates.items()} | {"all": rates}


def iqn_speed(steps: int = 4000, repeats: int = 3, n_quantiles: int = 32, seed: int = 0) -> dict[str, Any]:
    """IQN vs QR-DQN, CartPole-v1: 1,000 warm-up steps, then 1 update of batch 64 per env step,
    net_arch [256, 256], N = N′ = K = n_quantiles (QR-DQN's n_quantiles)."""
    from sb3_contrib import QRDQN

    torch.set_num_threads(1)
    # Identical settings on both sides, IQN's defaults where SB3's differ (max_grad_norm: SB3's
    # QR-DQN does not clip by default; target_update_interval: env steps there, updates here,
    # the same at one update per step).
    common = dict(
        learning_starts=1000,
        batch_size=64,
        train_freq=1,
        gradient_steps=1,
        buffer_size=steps,
        learning_rate=1e-3,
        gamma=0.99,
        max_grad_norm=10.0,
        target_update_interval=500,
        exploration_fraction=0.1,
        exploration_initial_eps=1.0,
        exploration_final_eps=0.01,
    )

    def qrdqn(n: int) -> None:
        QRDQN(
            "MlpPolicy",
            gym.make("CartPole-v1"),
            device="cpu",
            seed=seed,
            verbose=0,
            **common,
            policy_kwargs={"net_arch": [256, 256], "n_quantiles": n_quantiles},
        ).learn(total_timesteps=n)

    def iqn(n: int) -> None:
        _train_ours(
            "iqn",
            "CartPole-v1",
            n,
            seed,
            net_arch=[256, 256],
            n_quantiles=n_quantiles,
            n_target_quantiles=n_quantiles,
            n_action_quantiles=n_quantiles,
            **common,
        )

    out = _speed_table({"qrdqn": qrdqn, "iqn": iqn}, steps, common["learning_starts"], repeats)
    out.update(
        ratio=out["iqn"] / out["qrdqn"],
        ratio_cpu=out["iqn_cpu"] / out["qrdqn_cpu"],
        settings=dict(
            env="CartPole-v1",
            steps=steps,
            repeats=repeats,
            n_quantiles=n_quantiles,
            net_arch=[256, 256],
            torch_threads=1,
            **common,
        ),
    )
    return out


def dsac_speed(
    steps: int = 2500, repeats: int = 2, seed: int = 0, activation: str = "relu"
) -> dict[str, Any]:
    """DSAC vs SAC vs TQC, HalfCheetah-v5: 1,000 warm-up steps, then 1 update of batch 256 per env
    step, net_arch [256, 256] (actor and critics), one process, one torch thread. ``activation``:
    DSAC's hidden activation (``relu`` as SB3's nets; ``gelu`` is DSAC-T's official choice)."""
    from sb3_contrib import TQC
    from stable_baselines3 import SAC

    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    torch.set_num_threads(1)
    common = dict(learning_starts=1000, batch_size=256, train_freq=1, gradient_steps=1, buffer_size=steps)

    def sb3(cls: Any) -> Any:
        return lambda n: cls(
            "MlpPolicy",
            gym.make("HalfCheetah-v5"),
            device="cpu",
            seed=seed,
            verbose=0,
            **common,
            policy_kwargs={"net_arch": [256, 256]},
        ).learn(total_timesteps=n)

    def dsac(n: int) -> None:
        _train_ours("dsac", "HalfCheetah-v5", n, seed, net_arch=[256, 256], activation=activation, **common)

    out = _speed_table(
        {"sac": sb3(SAC), "tqc": sb3(TQC), "dsac": dsac}, steps, common["learning_starts"], repeats
    )
    out.update(
        ratio_vs_sac=out["dsac"] / out["sac"],
        ratio_vs_sac_cpu=out["dsac_cpu"] / out["sac_cpu"],
        ratio_vs_tqc=out["dsac"] / out["tqc"],
        settings=dict(
            env="HalfCheetah-v5",
            steps=steps,
            repeats=repeats,
            net_arch=[256, 256],
            batch_size=256,
            learning_starts=1000,
            updates_per_step=1,
            torch_threads=1,
            dsac_activation=activation,
            tqc="sb3-contrib defaults: 2 critics x 25 quantiles, 2 dropped per net",
        ),
    )
    return out


def dsac_update_profile(repeats: int = 5, updates: int = 40, seed: int = 0) -> dict[str, Any]:
    """Where one DSAC-T update's time goes, HalfCheetah-v5 sizes (obs 17, act 6), 2×256 ReLU, batch
    256, one thread: the full update, only its networks' forward/backward passes, only their matrix
    products, and SB3 SAC's ``train(1)``; process CPU ms per update, alternating, median of repeats."""
    from stable_baselines3 import SAC

    import rlrobust
    from rlrobust.core.types import TransitionBatch
    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    torch.set_num_threads(1)
    env, b = gym.make("HalfCheetah-v5"), 256
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(10):
        obs = torch.randn(b, 17, generator=g)
        batches.append(
            TransitionBatch(
                obs,
                torch.rand(b, 6, generator=g) * 2 - 1,
                torch.randn(b, generator=g),
                obs + 0.01,
                torch.zeros(b),
                torch.full((b,), 0.99),
            )
        )
    agent = rlrobust.make_agent(
        "dsac",
        env.observation_space,
        env.action_space,
        seed=seed,
        net_arch=[256, 256],
        activation="relu",
        learning_starts=0,
    )

    def full(i: int) -> None:
        agent.update(batches[i % 10])

    def networks(i: int) -> None:  # the same passes as an update (actor step every 2nd), no losses/optimizer
        x = batches[i % 10]
        with torch.no_grad():
            next_actions, _ = agent.actor_target(x.next_observations)
            agent.critic_target(torch.cat([x.next_observations, next_actions], -1))
        loss = agent.critic(torch.cat([x.observations, x.actions], -1)).sum()
        if i % 2 == 0:
            actions, log_prob = agent.actor(x.observations)
            agent.critic.requires_grad_(False)
            loss = loss + agent.critic(torch.cat([x.observations, actions], -1)).sum() + log_prob.sum()
            agent.critic.requires_grad_(True)
        loss.backward()
        for p in [*agent.actor.parameters(), *agent.critic.parameters()]:
            p.grad = None

    w = {
        k: torch.randn(*shape)
        for k, shape in dict(
            a1=(17, 256), a2=(256, 256), a3=(256, 12), c1=(2, 23, 256), c2=(2, 256, 256), c3=(2, 256, 2)
        ).items()
    }
    h = {
        k: torch.randn(*shape)
        for k, shape in dict(
            x17=(b, 17), x256=(b, 256), x12=(b, 12), y23=(2, b, 23), y256=(2, b, 256), y2=(2, b, 2)
        ).items()
    }

    def matmuls(i: int) -> None:  # the products of those passes: forward, input grads, weight grads
        def actor(backward: bool) -> None:
            torch.mm(h["x17"], w["a1"]), torch.mm(h["x256"], w["a2"]), torch.mm(h["x256"], w["a3"])
            if backward:
                torch.mm(h["x12"], w["a3"].t()), torch.mm(h["x256"], w["a2"].t())
                (
                    torch.mm(h["x256"].t(), h["x12"]),
                    torch.mm(h["x256"].t(), h["x256"]),
                    torch.mm(h["x17"].t(), h["x256"]),
                )

        def critic(input_grads: int, weight_grads: bool) -> None:
            torch.bmm(h["y23"], w["c1"]), torch.bmm(h["y256"], w["c2"]), torch.bmm(h["y256"], w["c3"])
            for layer in ("c3", "c2", "c1")[:input_grads]:
                torch.bmm(h["y2" if layer == "c3" else "y256"], w[layer].transpose(1, 2))
            if weight_grads:
                for x, y in (("y256", "y2"), ("y256", "y256"), ("y23", "y256")):
                    torch.bmm(h[x].transpose(1, 2), h[y])

        actor(False), critic(0, False)  # target actor and target critics
        critic(2, True)  # critic step (the first layer's input needs no gradient)
        if i % 2 == 0:
            actor(True), critic(3, False)  # actor step through the frozen critics

    sac = SAC(
        "MlpPolicy",
        gym.make("HalfCheetah-v5"),
        device="cpu",
        seed=seed,
        verbose=0,
        learning_starts=1000,
        batch_size=256,
        train_freq=1,
        gradient_steps=1,
        buffer_size=2000,
        policy_kwargs={"net_arch": [256, 256]},
    )
    sac.learn(1001)

    def sb3_sac(i: int) -> None:
        sac.train(gradient_steps=1, batch_size=256)

    fns = {
        "dsac_update": full,
        "dsac_networks_only": networks,
        "dsac_matmuls_only": matmuls,
        "sb3_sac_update": sb3_sac,
    }
    for fn in fns.values():
        for i in range(20):
            fn(i)
    ms: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with Timer() as t:
                for i in range(updates):
                    fn(i)
            ms[name].append(t.cpu / updates * 1e3)
    out: dict[str, Any] = {k: statistics.median(v) for k, v in ms.items()}
    out.update(
        all=ms,
        update_ratio_vs_sac=out["sb3_sac_update"] / out["dsac_update"],
        settings=dict(repeats=repeats, updates=updates, batch_size=256, net_arch=[256, 256], torch_threads=1),
    )
    return out


def _learning_curve(
    agent_name: str,
    env_id: str,
    steps: int,
    seed: int,
    eval_interval: int,
    eval_episodes: int,
    agent_kwargs: dict[str, Any],
) -> list[tuple[int, float]]:
    import rlrobust
    from rlrobust.core.logging import read_metrics

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as run_dir:
        rlrobust.train(
            agent_name,
            env_id,
            total_steps=steps,
            seed=seed,
            run_dir=run_dir,
            agent_kwargs=agent_kwargs,
            eval_interval=eval_interval,
            eval_episodes=eval_episodes,
            final_eval_episodes=0,
            checkpoint_interval=0,
            progress=False,
        )
        return [(r["step"], r["eval/return_mean"]) for r in read_metrics(run_dir) if "eval/return_mean" in r]


def iqn_learning(
    seeds: int = 5,
    steps: int = 50_000,
    eval_interval: int = 2500,
    eval_episodes: int = 10,
    threshold: float = 475.0,
    preset: str = "iqn_cartpole",
    runs_dir: str = "runs/benchmarks/iqn-learning",
) -> dict[str, Any]:
    """IQN on CartPole-v1 with ``conf/experiment/<preset>.yaml`` (``none``: conf/agent/iqn.yaml
    defaults): the FINAL policy's return after ``steps`` env steps (``eval_episodes``
    deterministic episodes) per seed, and the evaluation curve every ``eval_interval`` steps.

    Resumable: one ordinary run dir per seed under ``runs_dir/<preset>/seed<k>``; a finished run
    (final_evaluation.json written) is read back, an interrupted one resumes from its checkpoint.
    The final policy is also scored by an independent loop (the final checkpoint, reloaded, on
    reset seeds 10_000 + k)."""
    import rlrobust
    from rlrobust.core.checkpoint import load_agent
    from rlrobust.core.episodes import run_episodes
    from rlrobust.core.logging import read_metrics
    from rlrobust.interop.policies import AgentPolicy

    torch.set_num_threads(1)
    agent_kwargs = preset_agent(preset)
    per_seed: dict[int, dict[str, Any]] = {}
    for seed in range(seeds):
        run_dir = Path(runs_dir) / preset / f"seed{seed}"
        final_path = run_dir / "final_evaluation.json"
        if not final_path.exists():
            rlrobust.train(
                "iqn",
                "CartPole-v1",
                total_steps=steps,
                seed=seed,
                run_dir=run_dir,
                agent_kwargs=agent_kwargs,
                eval_interval=eval_interval,
                eval_episodes=eval_episodes,
                final_eval_episodes=eval_episodes,
                checkpoint_interval=10_000,
                progress=False,
            )
        final = json.loads(final_path.read_text())
        curve = [(r["step"], r["eval/return_mean"]) for r in read_metrics(run_dir) if "eval/return_mean" in r]
        final_policy = AgentPolicy(load_agent(run_dir / "checkpoints" / f"step_{steps:09d}"))
        independent, _ = run_episodes(
            gym.make("CartPole-v1"), final_policy, [10_000 + k for k in range(eval_episodes)]
        )
        per_seed[seed] = {
            "final": final["eval/return_mean"],
            "final_independent": float(np.mean(independent)),
            "curve": curve,
            "steps_per_second": final.get("time/steps_per_second"),
        }
        print(
            f"seed {seed}: final {per_seed[seed]['final']:.1f} (independent loop "
            f"{per_seed[seed]['final_independent']:.1f})",
            file=sys.stderr,
            flush=True,
        )
    from rlrobust.evaluation import summarize_runs

    finals = [v["final"] for v in per_seed.values()]
    return {
        "per_seed": per_seed,
        "seeds_final_at_threshold": sum(v["final"] >= threshold for v in per_seed.values()),
        # IQM and mean with 95 % stratified-bootstrap intervals over seeds (two seeds at least).
        "over_seeds": summarize_runs(finals).to_dict() if len(finals) > 1 else None,
        "seeds": seeds,
        "settings": dict(
            env="CartPole-v1",
            steps=steps,
            eval_interval=eval_interval,
            eval_episodes=eval_episodes,
            threshold=threshold,
            agent=f"conf/agent/iqn.yaml + conf/experiment/{preset}.yaml {agent_kwargs}",
        ),
    }


def dsac_pendulum(seeds: int = 3, steps: int = 20_000, eval_episodes: int = 10) -> dict[str, Any]:
    """DSAC on Pendulum-v1 with conf/experiment/dsac_pendulum.yaml: eval return along 20k env steps."""
    preset = preset_agent("dsac_pendulum")
    curves = {
        s: _learning_curve("dsac", "Pendulum-v1", steps, s, steps // 4, eval_episodes, preset)
        for s in range(seeds)
    }
    from rlrobust.evaluation import summarize_runs

    finals = [c[-1][1] for c in curves.values()]
    return {
        "curves": curves,
        "final": {s: c[-1][1] for s, c in curves.items()},
        # IQM and its 95% stratified-bootstrap interval over seeds
        "over_seeds": summarize_runs(finals).to_dict() if len(finals) > 1 else None,
        "settings": dict(
            env="Pendulum-v1",
            steps=steps,
            eval_episodes=eval_episodes,
            agent=f"conf/agent/dsac.yaml + conf/experiment/dsac_pendulum.yaml {preset}",
        ),
    }


def halfcheetah_learning(
    algo: str = "dsac", seed: int = 0, steps: int = 100_000, eval_episodes: int = 10, agent_kwargs: str = "{}"
) -> dict[str, Any]:
    """DSAC or SB3 SAC on HalfCheetah-v5 for ``steps`` env steps (same settings as dsac-speed:
    2×256 ReLU, batch 256, 1 update per step after 10k random steps), then the mean return of
    ``eval_episodes`` deterministic episodes (seeds 10_000+k). Run one process per (algo, seed).
    ``agent_kwargs``: JSON of extra DSAC hyperparameters (e.g. ``{"learning_rate": 3e-4}``)."""
    from stable_baselines3 import SAC

    from rlrobust.core.episodes import run_episodes
    from rlrobust.envs.mujoco_params import silence_mujoco_warnings

    silence_mujoco_warnings()
    torch.set_num_threads(1)
    common = dict(learning_starts=10_000, batch_size=256, train_freq=1, gradient_steps=1, buffer_size=steps)
    with Timer() as t:
        if algo == "sac":
            model = SAC(
                "MlpPolicy",
                gym.make("HalfCheetah-v5"),
                device="cpu",
                seed=seed,
                verbose=0,
                **common,
                policy_kwargs={"net_arch": [256, 256]},
            ).learn(total_timesteps=steps)
            policy = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
        else:
            agent = _train_ours(
                "dsac",
                "HalfCheetah-v5",
                steps,
                seed,
                net_arch=[256, 256],
                activation="relu",
                **common,
                **json.loads(agent_kwargs),
            )
            policy = lambda obs: agent.act(obs, deterministic=True)  # noqa: E731
    seconds = t.wall
    returns, _ = run_episodes(gym.make("HalfCheetah-v5"), policy, [10_000 + k for k in range(eval_episodes)])
    return {
        "algo": algo,
        "seed": seed,
        "steps": steps,
        "agent_kwargs": agent_kwargs,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "train_seconds": seconds,
    }


LOCAL = {
    "iqn-speed": iqn_speed,
    "dsac-speed": dsac_speed,
    "dsac-profile": dsac_update_profile,
    "iqn-learning": iqn_learning,
    "dsac-pendulum": dsac_pendulum,
    "dsac-halfcheetah": halfcheetah_learning,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help") or sys.argv[1] not in {*LOCAL, *DELEGATED}:
        print(__doc__)
        raise SystemExit(0 if len(sys.argv) >= 2 and sys.argv[1] in ("-h", "--help") else 2)
    name, rest = sys.argv[1], sys.argv[2:]
    if name in DELEGATED:
        sys.path.insert(0, str(HERE))
        module_name, subcommand = DELEGATED[name]
        module = importlib.import_module(module_name)
        sys.argv = [f"{module.__file__}", *subcommand, *rest]
        module.main()
        return
    fn = LOCAL[name]
    parser = argparse.ArgumentParser(prog=f"benchmark.py {name}", description=fn.__doc__)
    import inspect

    for pname, param in inspect.signature(fn).parameters.items():
        parser.add_argument(f"--{pname.replace('_', '-')}", type=type(param.default), default=param.default)
    args = parser.parse_args(rest)
    result = fn(**vars(args))
    print(json.dumps(result, indent=1, default=lambda x: float(x) if isinstance(x, np.floating) else str(x)))


if __name__ == "__main__":
    main()
