"""Reports of a :class:`~rlrobust.evaluation.suite.SuiteResult`: CSV, JSON, plots, TensorBoard, text.

Plots use matplotlib's Agg backend (no display needed). A 2-D grid gives a heatmap of the
mean return; a 1-D suite a curve with a +-std band; for 3-D grids the heatmap shows the first
two dimensions with the *worst* mean over the remaining ones; sampled (non-grid) points give a
scatter coloured by mean return.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rlrobust.evaluation.suite import SuiteResult


def _prepare(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_csv(result: SuiteResult, path: str | Path) -> Path:
    """One row per point (parameters, mean, std, min, max, episodes, mean_length)."""
    path = _prepare(path)
    rows = result.rows()
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(result: SuiteResult, path: str | Path) -> Path:
    """Summary, settings, per-point rows and every episode return."""
    path = _prepare(path)
    doc = {
        "suite": result.suite,
        "env_id": result.env_id,
        "seed": result.seed,
        "summary": result.summary(),
        "worst_point": result.worst_point,
        "settings": result.settings,
        "names": list(result.names),
        "grid_shape": None if result.grid_shape is None else list(result.grid_shape),
        "rows": result.rows(),
        "returns": result.returns.tolist(),
        "lengths": result.lengths.tolist(),
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def read_json(path: str | Path) -> SuiteResult:
    """The :class:`SuiteResult` that :func:`write_json` stored (every episode return and length)."""
    from rlrobust.evaluation.suite import SuiteResult

    doc = json.loads(Path(path).read_text())
    names = tuple(doc["names"])
    return SuiteResult(
        suite=doc["suite"], env_id=doc["env_id"], names=names,
        points=[{n: float(row[n]) for n in names} for row in doc["rows"]],
        returns=np.asarray(doc["returns"], dtype=np.float64), lengths=np.asarray(doc["lengths"], dtype=np.int64),
        seed=int(doc["seed"]), cvar_alpha=float(doc["summary"]["cvar_alpha"]),
        grid_shape=None if doc["grid_shape"] is None else tuple(doc["grid_shape"]), settings=dict(doc["settings"]),
    )


def _figure(result: SuiteResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means, names = result.point_means, result.names
    pts = np.array([[p[n] for n in names] for p in result.points])
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    title = f"{result.suite} ({result.env_id}): worst {result.worst:.1f}, mean {result.mean:.1f}"
    if len(names) == 1:
        order = np.argsort(pts[:, 0])
        x, m, s = pts[order, 0], means[order], result.point_stds[order]
        ax.plot(x, m, marker="o")
        ax.fill_between(x, m - s, m + s, alpha=0.25)
        ax.set_xlabel(names[0])
        ax.set_ylabel("mean return")
    elif result.grid_shape is None:
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=means, cmap="viridis")
        fig.colorbar(sc, ax=ax, label="mean return")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        # Grid points are in itertools.product order (first dimension slowest).
        grid = means.reshape(result.grid_shape)
        if grid.ndim > 2:
            grid = grid.reshape(grid.shape[0], grid.shape[1], -1).min(axis=2)
            title += f"\n(worst over {', '.join(names[2:])})"
        x0 = np.unique(pts[:, 0])
        x1 = np.unique(pts[:, 1])
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis",
                       extent=(x1[0], x1[-1], x0[0], x0[-1]) if len(x0) > 1 and len(x1) > 1 else None)
        fig.colorbar(im, ax=ax, label="mean return")
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot(result: SuiteResult, path: str | Path) -> Path:
    """Save the suite plot as a PNG."""
    import matplotlib.pyplot as plt

    path = _prepare(path)
    fig = _figure(result)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def log_tensorboard(result: SuiteResult, log_dir: str | Path, step: int = 0) -> None:
    """Scalars ``robust/{worst,mean,cvar}``, the table as text and the plot as a figure."""
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(log_dir))
    try:
        writer.add_scalar(f"robust/{result.suite}/worst", result.worst, step)
        writer.add_scalar(f"robust/{result.suite}/mean", result.mean, step)
        writer.add_scalar(f"robust/{result.suite}/cvar", result.cvar, step)
        writer.add_text(f"robust/{result.suite}/table", "```\n" + format_table(result) + "\n```", step)
        fig = _figure(result)
        writer.add_figure(f"robust/{result.suite}/plot", fig, step)
        plt.close(fig)
    finally:
        writer.close()


def format_table(result: SuiteResult) -> str:
    """Summary lines, then a matrix of mean returns for 2-D grids or a row table otherwise."""
    e = result.returns.shape[1]
    lines = [
        f"suite {result.suite} ({result.env_id}), {len(result.points)} points x {e} episodes, seed {result.seed}",
        f"worst {result.worst:.2f}  mean {result.mean:.2f}  CVaR_{result.cvar_alpha:g} {result.cvar:.2f}  "
        f"worst at {', '.join(f'{k}={v:.4g}' for k, v in result.worst_point.items())}",
    ]
    names = result.names
    if result.grid_shape is not None and len(names) == 2:
        n0, n1 = result.grid_shape
        grid = result.point_means.reshape(n0, n1)
        col_values = [result.points[j][names[1]] for j in range(n1)]
        row_values = [result.points[i * n1][names[0]] for i in range(n0)]
        lines.append(f"mean return: rows {names[0]}, columns {names[1]}")
        lines.append(f"{'':>10} " + " ".join(f"{v:>9.4g}" for v in col_values))
        for value, row in zip(row_values, grid):
            lines.append(f"{value:>10.4g} " + " ".join(f"{m:>9.2f}" for m in row))
        return "\n".join(lines)
    header = [*names, "mean", "std", "min", "max", "episodes"]
    widths = [max(10, len(h)) for h in header]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in result.rows():
        cells = [f"{row[n]:.4g}" for n in names] + [f"{row[k]:.2f}" for k in ("mean", "std", "min", "max")]
        cells.append(str(row["episodes"]))
        lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    return "\n".join(lines)


def write_reports(result: SuiteResult, out_dir: str | Path, *, tensorboard: bool = True) -> dict[str, Path]:
    """Everything ``scripts/evaluate.py`` writes: ``result.csv``, ``result.json``, the plot
    (``heatmap.png`` for 2-D and more, ``curve.png`` for 1-D) and TensorBoard events in ``tb/``."""
    out = Path(out_dir)
    paths = {
        "csv": write_csv(result, out / "result.csv"),
        "json": write_json(result, out / "result.json"),
        "plot": plot(result, out / ("curve.png" if len(result.names) == 1 else "heatmap.png")),
    }
    if tensorboard:
        log_tensorboard(result, out / "tb")
        paths["tensorboard"] = out / "tb"
    return paths
