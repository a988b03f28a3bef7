"""Risk-sensitive acting under perturbation: does it buy worst-case return, and at what mean cost?

Each variant is trained for each seed, then its final (deterministic) policy is evaluated on a
parameter suite and an observation-noise suite of its task: worst case, mean and CVaR-10 % of
the per-point mean returns, next to the nominal return.

* IQN on CartPole-v1 (``conf/experiment/iqn_cartpole.yaml``, 50k env steps): risk-neutral,
  CVaR acting at α = 0.25 and 0.1, Wang acting at η = −0.75 and −1.5 (training stays
  risk-neutral; only the acting distortion changes, :mod:`rlrobust.core.risk`).
* DSAC on InvertedPendulum-v5 (lr 1e-3, 2 × 256 ReLU, 20k env steps): risk-neutral and the
  mean − λσ actor at λ = 0.5 and 1.0.

Resumable across sessions: one ordinary run dir per (variant, seed) under ``--runs-dir``
(an interrupted run resumes from its checkpoint), and every finished (variant, seed) is written
to ``--results`` (JSON, kept in the repository) at once, so a later call skips it. ``--max-runs``
bounds the number of new trainings per call. The table and the plots are rebuilt from the results
file each time, over whatever is finished: the bar plot of the seed means, a table of IQM and mean
with 95 % stratified-bootstrap intervals over seeds (:func:`rlrobust.evaluation.stats.summarize_runs`),
and performance profiles per task and suite over every (seed, grid point) mean return
(``<plot>_profile_<task>_<suite kind>.png``).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/benchmark.py risk [--seeds 3] [--variants a,b]
[--max-runs N] [--runs-dir DIR] [--results FILE] [--plot FILE]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from presets import preset_agent
from timing import Timer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_IQN = {
    "agent": "iqn",
    "env": "CartPole-v1",
    "steps": 50_000,
    "suites": {"parameters": ("cartpole-2d", 5), "observation_noise": ("cartpole-obs-noise", 6)},
}
_DSAC = {
    "agent": "dsac",
    "env": "InvertedPendulum-v5",
    "steps": 20_000,
    "base": {
        "learning_rate": 1e-3,
        "alpha_learning_rate": 1e-3,
        "learning_starts": 1000,
        "net_arch": [256, 256],
        "activation": "relu",
    },
    "suites": {
        "parameters": ("invertedpendulum-2d", 4),
        "observation_noise": ("invertedpendulum-obs-noise", 6),
    },
}

VARIANTS: dict[str, dict[str, Any]] = {
    "iqn-neutral": {**_IQN, "risk": {"risk": "neutral"}},
    "iqn-cvar-0.25": {**_IQN, "risk": {"risk": "cvar", "risk_param": 0.25}},
    "iqn-cvar-0.1": {**_IQN, "risk": {"risk": "cvar", "risk_param": 0.1}},
    "iqn-wang--0.75": {**_IQN, "risk": {"risk": "wang", "risk_param": -0.75}},
    "iqn-wang--1.5": {**_IQN, "risk": {"risk": "wang", "risk_param": -1.5}},
    "dsac-neutral": {**_DSAC, "risk": {"risk": "mean_std", "risk_lambda": 0.0}},
    "dsac-meanstd-0.5": {**_DSAC, "risk": {"risk": "mean_std", "risk_lambda": 0.5}},
    "dsac-meanstd-1.0": {**_DSAC, "risk": {"risk": "mean_std", "risk_lambda": 1.0}},
}
EPISODES_PER_POINT = 2


def agent_kwargs(variant: dict[str, Any]) -> dict[str, Any]:
    """The variant's hyperparameters: its preset (IQN: conf/experiment/iqn_cartpole.yaml) plus its risk."""
    if variant["agent"] == "iqn":
        preset = preset_agent("iqn_cartpole")
    else:
        preset = dict(variant["base"])
    return {**preset, **variant["risk"]}


def run_one(name: str, seed: int, runs_dir: Path, steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) one (variant, seed) and evaluate its final policy on both suites
    (``steps`` overrides the variant's budget: smoke checks only)."""
    import torch

    import rlrobust

    torch.set_num_threads(1)
    variant = VARIANTS[name]
    with Timer() as t:
        result = rlrobust.train(
            variant["agent"],
            variant["env"],
            total_steps=steps or variant["steps"],
            seed=seed,
            run_dir=runs_dir / name / f"seed{seed}",
            agent_kwargs=agent_kwargs(variant),
            final_eval_episodes=10,
            checkpoint_interval=10_000,
            progress=False,
        )
    out: dict[str, Any] = {"nominal": result.metrics["eval/return_mean"], "train_seconds": t.wall}
    for kind, (suite, points) in variant["suites"].items():
        r = rlrobust.evaluate(
            result.agent, suite, episodes=EPISODES_PER_POINT, seed=seed, points_per_dim=points, workers=1
        )
        out[kind] = {
            "suite": suite,
            **{k: r.summary()[k] for k in ("worst", "mean", "cvar")},
            "point_means": r.point_means.tolist(),
        }
    return out


def aggregate(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: seeds done, and the mean over seeds of nominal and each suite's worst/mean/CVaR."""
    table: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        runs = list(results.get(name, {}).values())
        if not runs:
            continue
        row: dict[str, Any] = {"seeds": len(runs), "nominal": float(np.mean([r["nominal"] for r in runs]))}
        for kind in ("parameters", "observation_noise"):
            for stat in ("worst", "mean", "cvar"):
                row[f"{kind}/{stat}"] = float(np.mean([r[kind][stat] for r in runs]))
        table[name] = row
    return table


def interval_summaries(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant and ``<suite kind>/<stat>``: IQM and mean over seeds with bootstrap intervals."""
    from rlrobust.evaluation.stats import summarize_runs

    out: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        runs = list(results.get(name, {}).values())
        if len(runs) < 2:  # an interval needs two seeds at least
            continue
        out[name] = {
            f"{kind}/{stat}": summarize_runs([r[kind][stat] for r in runs]).to_dict()
            for kind in ("parameters", "observation_noise")
            for stat in ("worst", "mean", "cvar")
        }
    return out


def interval_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """Suite-mean return per variant: IQM [95 % CI] and mean ± std over seeds, both suites."""
    head = (
        "| variant | seeds | param mean: IQM [95% CI] | mean ± std | noise mean: IQM [95% CI] | mean ± std |\n"
        "|---|---|---|---|---|---|"
    )
    rows = []
    for name, row in summaries.items():
        cells = []
        for kind in ("parameters", "observation_noise"):
            s = row[f"{kind}/mean"]
            cells += [
                f"{s['iqm']:.1f} [{s['iqm_ci'][0]:.1f}, {s['iqm_ci'][1]:.1f}]",
                f"{s['mean']:.1f} ± {s['std']:.1f}",
            ]
        rows.append(f"| {name} | {row['parameters/mean']['runs']} | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def plot_profiles(results: dict[str, dict[str, Any]], path: Path) -> list[Path]:
    """Performance profiles per task and suite kind: every variant's (seed, grid point) mean returns."""
    from rlrobust.evaluation.stats import plot_performance_profiles

    written = []
    for task in ("iqn", "dsac"):
        names = [n for n in VARIANTS if n.startswith(task) and len(results.get(n, {})) >= 2]  # bands: 2 seeds
        if not names:
            continue
        for kind in ("parameters", "observation_noise"):
            scores = {n: np.array([r[kind]["point_means"] for r in results[n].values()]) for n in names}
            suite = VARIANTS[names[0]]["suites"][kind][0]
            out = path.with_name(f"{path.stem}_profile_{task}_{kind}.png")
            written.append(
                plot_performance_profiles(
                    scores,
                    out,
                    xlabel=f"mean return at a grid point of {suite}",
                    title=f"{VARIANTS[names[0]]['env']}, {suite}: runs x grid points",
                )
            )
    return written


def markdown(table: dict[str, dict[str, Any]]) -> str:
    head = (
        "| variant | seeds | nominal | param worst | param CVaR-10% | param mean | noise worst | "
        "noise CVaR-10% | noise mean |\n|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {n} | {r['seeds']} | {r['nominal']:.1f} | "
        + " | ".join(
            f"{r[f'{k}/{s}']:.1f}"
            for k in ("parameters", "observation_noise")
            for s in ("worst", "cvar", "mean")
        )
        + " |"
        for n, r in table.items()
    ]
    return "\n".join([head, *rows])


def plot(table: dict[str, dict[str, Any]], path: Path) -> None:
    """One figure: per task (rows) and suite kind (columns), worst / CVaR / mean per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in ("iqn", "dsac") if any(n.startswith(t) for n in table)]
    if not tasks:
        return
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        names = [n for n in table if n.startswith(task)]
        x = np.arange(len(names))
        for j, kind in enumerate(("parameters", "observation_noise")):
            ax = axes[i, j]
            for k, stat in enumerate(("worst", "cvar", "mean")):
                ax.bar(
                    x + (k - 1) * 0.27,
                    [table[n][f"{kind}/{stat}"] for n in names],
                    0.27,
                    label={"worst": "worst case", "cvar": "CVaR 10%", "mean": "mean"}[stat],
                )
            ax.scatter(
                x,
                [table[n]["nominal"] for n in names],
                marker="_",
                s=500,
                color="black",
                zorder=3,
                label="nominal",
            )
            ax.set_xticks(x, [f"{n}\n({table[n]['seeds']} seeds)" for n in names], fontsize=7)
            suite = VARIANTS[names[0]]["suites"][kind][0]
            ax.set_title(f"{VARIANTS[names[0]]['env']}: {suite}", fontsize=9)
            ax.set_ylabel("return")
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="benchmark.py risk", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; default: all")
    parser.add_argument(
        "--max-runs", type=int, default=None, help="new trainings in this call (default: all left)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="override every budget (smoke checks, not results)"
    )
    parser.add_argument("--runs-dir", default="runs/benchmarks/risk")
    parser.add_argument("--results", default=str(ROOT / "docs" / "results" / "risk.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "results" / "risk.png"))
    args = parser.parse_args()
    names = [n for n in args.variants.split(",") if n]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; valid: {sorted(VARIANTS)}")
    results_path = Path(args.results)
    doc = json.loads(results_path.read_text()) if results_path.exists() else {"results": {}}
    results: dict[str, dict[str, Any]] = doc["results"]
    stored = doc.get("settings", {}).get("variants", {})
    changed = [
        n
        for n in names
        if results.get(n) and n in stored and stored[n]["agent_kwargs"] != agent_kwargs(VARIANTS[n])
    ]
    if changed and args.steps is None:  # finished seeds were trained otherwise: do not mix the two
        raise SystemExit(
            f"{results_path}: variants {changed} have results trained with other hyperparameters "
            f"(e.g. {changed[0]}: stored {stored[changed[0]]['agent_kwargs']}, now "
            f"{agent_kwargs(VARIANTS[changed[0]])}); use another --results file"
        )
    todo = [(n, s) for s in range(args.seeds) for n in names if str(s) not in results.get(n, {})]
    for name, seed in todo[: args.max_runs]:
        results.setdefault(name, {})[str(seed)] = run_one(name, seed, Path(args.runs_dir), args.steps)
        doc.update(
            settings={
                "episodes_per_point": EPISODES_PER_POINT,
                "cvar_alpha": 0.1,
                "steps_override": args.steps,
                "variants": {
                    n: {
                        "agent": v["agent"],
                        "env": v["env"],
                        "steps": v["steps"],
                        "agent_kwargs": agent_kwargs(v),
                        "suites": {k: {"suite": s, "points_per_dim": p} for k, (s, p) in v["suites"].items()},
                    }
                    for n, v in VARIANTS.items()
                },
            }
        )
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(doc, indent=1))  # at once: a later call skips this run
        print(
            f"{name} seed {seed}: {json.dumps({k: v for k, v in results[name][str(seed)].items()})[:300]}",
            flush=True,
        )
    table = aggregate(results)
    plot(table, Path(args.plot))
    print(markdown(table))
    summaries = interval_summaries(results)
    if summaries:
        doc["summary_over_seeds"] = summaries
        results_path.write_text(json.dumps(doc, indent=1))
        print(interval_markdown(summaries))
        plot_profiles(results, Path(args.plot))
    left = [(n, s) for s in range(args.seeds) for n in names if str(s) not in results.get(n, {})]
    print(f"{len(left)} (variant, seed) runs left" + (f": {left}" if left else ""))


if __name__ == "__main__":
    main()
