"""IWOCS vs DSAC (nominal) vs DSAC (domain randomisation): worst-case and mean return over a suite.

The benchmark of ``docs/benchmarks.md`` (IWOCS section): on one suite, the same total env steps
for the three methods, several seeds, then every policy is evaluated on the suite's full grid
(both bounds included) by :func:`rlrobust.evaluate` — worst case, mean and CVaR-10% over the grid
(RRLS/M2TD3 protocol). IWOCS runs the paper's schedule (Zouitine et al., arXiv 2410.06212):
40% of the budget domain-randomised, then three worst-case iterations of 20% each.

Resumable across sittings: every (method, seed) is an ordinary run dir ``<root>/<method>-seed<S>``
that the trainer resumes from its latest checkpoint (``resume="auto"``, one checkpoint every
``checkpoint_interval`` steps); a run whose ``result.json`` exists is finished and skipped. The
summary (``summary.json``, ``table.md``, one heatmap PNG per method, ``profile.png``) is recomputed
from the stored results after every run, so it always covers exactly the runs that are done. Over
seeds it reports mean ± std and, from two seeds on, the IQM and mean with 95 % stratified-bootstrap
intervals (:func:`rlrobust.evaluation.stats.summarize_runs`); ``profile.png`` holds each method's
performance profile over every (seed, grid point) mean return. ``<root>/bench.json``
pins the settings: resuming with other settings fails instead of mixing budgets.

    python benchmarks/benchmark.py iwocs --root /work/runs/iwocs --suite invertedpendulum-2d \
        --steps 30000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timing import Timer

METHODS = ("dsac_nominal", "dsac_dr", "iwocs")
# DSAC-T at a small budget: the HalfCheetah preset of docs/benchmarks.md (lr 1e-3 for critic, actor
# and α, α auto from 1.0) with 2×64 ReLU nets (2.3x cheaper per update than 2×256 on the shared
# 2-core machine; the pendulum needs no more) and 1,000 warm-up steps, so that each IWOCS learner's
# warm-up is a small part of its iteration. Every field is also an IWOCS field, so IWOCS's inner
# learners get exactly these values.
SMALL_BUDGET_DSAC: dict[str, Any] = {
    "learning_starts": 1000,
    "net_arch": [64, 64],
    "activation": "relu",
    "learning_rate": 1e-3,
    "actor_learning_rate": 1e-3,
    "critic_learning_rate": 1e-3,
    "alpha_learning_rate": 1e-3,
    "ent_coef": "auto_1.0",
}
# IWOCS* (grid search) on a coarser grid than the evaluation's (4 per dimension, both bounds), 2
# Monte-Carlo episodes per point and 3 values of ρ: each search is 32 episodes, each ρ selection
# at most 18 (the paper's 10 × 10 grid and 10 ρ values cost more than the training at this budget).
IWOCS_SEARCH: dict[str, Any] = {
    "search": "grid",
    "grid_points_per_dim": 4,
    "eval_episodes": 2,
    "rho_candidates": [0.25, 0.5, 1.0],
}


@dataclass
class BenchSettings:
    """Everything that defines the benchmark's numbers (pinned in ``<root>/bench.json``).

    Attributes:
        suite: perturbation suite (training box of DR and IWOCS, evaluation grid).
        steps: env steps per run, the same for every method.
        seeds: training seeds; evaluation seed of seed ``s`` is ``1000 + s``.
        points_per_dim, episodes: the evaluation grid and the episodes per point.
        nominal_eval_interval: steps between evaluations at the nominal point during training
            (5 episodes; the learning curve that shows whether the budget solves the nominal task).
        dsac: DSAC hyperparameters of both baselines and of IWOCS's inner learners.
        iwocs: IWOCS-only hyperparameters (search, gating); the schedule is derived from ``steps``.
    """

    suite: str = "invertedpendulum-2d"
    steps: int = 30_000
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    points_per_dim: int = 10
    episodes: int = 5
    nominal_eval_interval: int = 2500
    dsac: dict[str, Any] = field(default_factory=lambda: dict(SMALL_BUDGET_DSAC))
    iwocs: dict[str, Any] = field(default_factory=lambda: dict(IWOCS_SEARCH))

    def schedule(self) -> dict[str, int]:
        """The paper's split: 40% domain-randomised (the trainer's warm-up included), then 3 × 20%."""
        learning_starts = int(self.dsac.get("learning_starts", 10_000))
        return {
            "dr_steps": int(0.4 * self.steps) - learning_starts,
            "steps_per_iteration": int(0.2 * self.steps),
            "n_iterations": 3,
        }

    def method(self, name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """``(agent, perturbation, agent kwargs)`` of one method."""
        if name == "dsac_nominal":
            return "dsac", {"kind": "static", "suite": self.suite}, dict(self.dsac)
        if name == "dsac_dr":
            return "dsac", {"kind": "random", "suite": self.suite}, dict(self.dsac)
        if name == "iwocs":
            # IWOCS takes DSAC's shared fields by their own names and the rest through dsac_kwargs.
            from rlrobust.agents.iwocs import IWOCSConfig

            own = set(IWOCSConfig.__dataclass_fields__)
            shared = {k: v for k, v in self.dsac.items() if k in own}
            extra = {k: v for k, v in self.dsac.items() if k not in own}
            return (
                "iwocs",
                {"kind": "static", "suite": self.suite},
                {**shared, "dsac_kwargs": extra, **self.schedule(), **self.iwocs},
            )
        raise ValueError(f"unknown method {name!r}; valid: {METHODS}")


def run_dir(root: Path, method: str, seed: int) -> Path:
    """The trainer's run dir of one (method, seed); its ``result.json`` marks it finished."""
    return root / f"{method}-seed{seed}"


def _pin_settings(root: Path, settings: BenchSettings) -> None:
    """Write ``bench.json`` on the first sitting; later sittings must use the same settings
    (seeds may be added: a seed's runs do not depend on the others)."""
    path = root / "bench.json"
    mine = asdict(settings)
    if path.exists():
        pinned = json.loads(path.read_text())
        from rlrobust.core.errors import ConfigError, describe_differences

        compared = [k for k in mine if k != "seeds"]
        differing = describe_differences({k: pinned.get(k) for k in compared}, {k: mine[k] for k in compared})
        if differing:
            raise ConfigError(
                f"{root} holds a benchmark with other settings ("
                + "; ".join(differing)
                + "); rerun with those settings to resume it, or use another --root"
            )
        mine["seeds"] = sorted(set(pinned.get("seeds", [])) | set(settings.seeds))
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=1))


def train_and_evaluate(
    settings: BenchSettings, method: str, seed: int, root: Path, *, checkpoint_interval: int, workers: int = 1
) -> dict[str, Any]:
    """Train (or resume) one (method, seed), evaluate it on the suite's grid, store ``result.json``."""
    import rlrobust
    from rlrobust.core.trainer import Trainer, TrainerSettings
    from rlrobust.envs import get_suite, make_env

    agent_name, perturbation, kwargs = settings.method(method)
    env_id = get_suite(settings.suite).env_id
    probe = make_env(env_id, perturbation=perturbation)
    agent = rlrobust.make_agent(agent_name, probe.observation_space, probe.action_space, seed=seed, **kwargs)
    probe.close()
    directory = run_dir(root, method, seed)
    trainer_settings = TrainerSettings(
        total_steps=settings.steps,
        seed=seed,
        progress=False,
        final_eval_episodes=0,
        checkpoint_interval=checkpoint_interval,
        log_interval=max(settings.steps // 100, 1),
        resume="auto",
        eval_interval=settings.nominal_eval_interval,
        eval_episodes=5,
    )
    with Timer() as train:
        trained = (
            Trainer(
                agent,
                lambda: make_env(env_id, perturbation=perturbation),
                trainer_settings,
                directory,
                suite=settings.suite,
            )
            .run()
            .agent
        )
    reset_stats = getattr(trained, "reset_acting_stats", None)
    if reset_stats is not None:
        reset_stats()
    with Timer() as evaluation:
        ev = rlrobust.evaluate(
            trained,
            settings.suite,
            episodes=settings.episodes,
            seed=1000 + seed,
            points_per_dim=settings.points_per_dim,
            workers=workers,
        )
    ev.to_json(directory / "evaluation.json")
    row: dict[str, Any] = {
        "suite": settings.suite,
        "method": method,
        "seed": seed,
        "steps": settings.steps,
        "worst": ev.worst,
        "mean": ev.mean,
        "cvar": ev.cvar,
        "worst_point": ev.worst_point,
        "grid": f"{settings.points_per_dim}^{len(ev.names)} x {settings.episodes} episodes",
        "train_seconds_this_sitting": round(train.wall, 1),
        "eval_seconds": round(evaluation.wall, 1),
    }
    from rlrobust.core.logging import read_metrics

    row["nominal_curve"] = [
        [r["step"], r["eval/return_mean"]] for r in read_metrics(directory) if "eval/return_mean" in r
    ]
    if agent_name == "iwocs":
        # Acting statistics are gathered in this process: evaluate with workers=1 for them.
        row["acting"] = trained.acting_stats() if workers == 1 else None
        row["iwocs_points"] = trained.points
        row["iwocs_rhos"] = trained.rhos
        row["iwocs_history"] = trained.history
    (directory / "result.json").write_text(json.dumps(row, indent=1))
    return row


def summarize(root: Path) -> dict[str, Any]:
    """Per-run rows, per-method means over seeds, ``table.md`` and one heatmap per method, all
    recomputed from the stored ``result.json`` / ``evaluation.json`` files under ``root``."""
    from rlrobust.evaluation.reports import read_json
    from rlrobust.evaluation.stats import plot_performance_profiles, summarize_runs

    rows = [json.loads(p.read_text()) for p in sorted(root.glob("*-seed*/result.json"))]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    per_method: dict[str, Any] = {}
    point_means: dict[str, np.ndarray] = {}
    for m in methods:
        mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["seed"])
        per_method[m] = {
            "seeds": [r["seed"] for r in mine],
            **{k: float(np.mean([r[k] for r in mine])) for k in ("worst", "mean", "cvar")},
        }
        if len(mine) >= 2:  # an interval needs two seeds at least
            per_method[m]["intervals"] = {
                k: summarize_runs([r[k] for r in mine]).to_dict() for k in ("worst", "mean", "cvar")
            }
        results = [read_json(run_dir(root, m, r["seed"]) / "evaluation.json") for r in mine]
        point_means[m] = np.stack([r.point_means for r in results])  # (seeds, grid points)
        pooled = results[0]
        pooled.returns = np.concatenate([r.returns for r in results], axis=1)  # seeds pooled per point
        pooled.lengths = np.concatenate([r.lengths for r in results], axis=1)
        pooled.suite = f"{m}, seeds {', '.join(map(str, per_method[m]['seeds']))}"  # the plot's title
        pooled.plot(root / f"heatmap_{m}.png")
    profiled = {m: x for m, x in point_means.items() if x.shape[0] >= 2}  # bands need two seeds
    if profiled:
        plot_performance_profiles(
            profiled,
            root / "profile.png",
            xlabel="mean return at a grid point",
            title="performance profiles over (seed, grid point), 95% stratified-bootstrap bands",
        )
    summary = {"rows": rows, "per_method": per_method}
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    (root / "table.md").write_text(format_table(rows, per_method))
    return summary


def format_table(rows: list[dict[str, Any]], per_method: dict[str, Any]) -> str:
    """A markdown table: one line per (method, seed), then the mean over seeds per method."""
    lines = ["| method | seed | worst case | mean | CVaR-10% | worst point |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (METHODS.index(r["method"]), r["seed"])):
        point = ", ".join(f"{k} {v:.3g}" for k, v in r["worst_point"].items())
        lines.append(
            f"| {r['method']} | {r['seed']} | {r['worst']:.1f} | {r['mean']:.1f} | {r['cvar']:.1f} | {point} |"
        )
    for m, s in per_method.items():
        lines.append(
            f"| **{m}** | mean of {len(s['seeds'])} | **{s['worst']:.1f}** | **{s['mean']:.1f}** | "
            f"**{s['cvar']:.1f}** | |"
        )
    with_intervals = {m: s["intervals"] for m, s in per_method.items() if "intervals" in s}
    if with_intervals:
        lines += [
            "",
            "| method | seeds | worst case: IQM [95% CI] | mean: IQM [95% CI] | CVaR-10%: IQM [95% CI] |",
        ]
        lines.append("|---|---|---|---|---|")
        for m, iv in with_intervals.items():
            cells = [
                f"{iv[k]['iqm']:.1f} [{iv[k]['iqm_ci'][0]:.1f}, {iv[k]['iqm_ci'][1]:.1f}]"
                for k in ("worst", "mean", "cvar")
            ]
            lines.append(f"| {m} | {iv['worst']['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bench_iwocs(
    settings: BenchSettings,
    root: str | Path,
    *,
    methods: tuple[str, ...] = METHODS,
    checkpoint_interval: int = 2500,
    workers: int = 1,
) -> dict[str, Any]:
    """Run every missing (method, seed) of ``settings`` under ``root`` (finished ones are skipped,
    unfinished ones resume), then return the recomputed summary."""
    from rlrobust.core.errors import ConfigError

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"unknown benchmark method(s) {unknown}; valid: {list(METHODS)}")
    torch.set_num_threads(1)
    root = Path(root)
    _pin_settings(root, settings)
    for seed in settings.seeds:  # seed-major: each seed's comparison is complete before the next starts
        for method in methods:
            if (run_dir(root, method, seed) / "result.json").exists():
                print(f"skip {method} seed {seed}: finished", flush=True)
                continue
            row = train_and_evaluate(
                settings, method, seed, root, checkpoint_interval=checkpoint_interval, workers=workers
            )
            print(json.dumps({k: v for k, v in row.items() if k != "iwocs_history"}), flush=True)
            summarize(root)
    return summarize(root)


def _import_everything() -> None:
    """Import every module a sitting will use now: a long sitting then keeps running the code it
    started with even if the source tree changes meanwhile (imports are otherwise lazy)."""
    import matplotlib.pyplot  # noqa: F401

    import rlrobust.agents.dsac  # noqa: F401
    import rlrobust.agents.iwocs  # noqa: F401
    import rlrobust.agents.iwocs_search  # noqa: F401
    import rlrobust.core.trainer  # noqa: F401
    import rlrobust.evaluation.reports  # noqa: F401
    import rlrobust.evaluation.suite  # noqa: F401


def main() -> None:
    _import_everything()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", required=True, help="benchmark folder (run dirs, results); reused to resume"
    )
    parser.add_argument("--suite", default="invertedpendulum-2d")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--points-per-dim", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument(
        "--dsac", type=json.loads, default={}, help="DSAC hyperparameters as JSON (all methods)"
    )
    parser.add_argument(
        "--iwocs", type=json.loads, default={}, help='IWOCS overrides as JSON, e.g. \'{"search": "grid"}\''
    )
    parser.add_argument("--nominal-eval-interval", type=int, default=2500)
    parser.add_argument("--checkpoint-interval", type=int, default=2500)
    args = parser.parse_args()
    settings = BenchSettings(
        args.suite,
        args.steps,
        list(args.seeds),
        args.points_per_dim,
        args.episodes,
        args.nominal_eval_interval,
        {**SMALL_BUDGET_DSAC, **args.dsac},
        {**IWOCS_SEARCH, **args.iwocs},
    )
    summary = bench_iwocs(
        settings, args.root, methods=tuple(args.methods), checkpoint_interval=args.checkpoint_interval
    )
    print(json.dumps(summary["per_method"], indent=1))
    print((Path(args.root) / "table.md").read_text())


if __name__ == "__main__":
    main()
