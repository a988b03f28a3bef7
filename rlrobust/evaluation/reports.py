"""The result of a suite evaluation, :class:`SuiteResult`, and its reports: CSV, JSON, plots,
TensorBoard, text.

:func:`rlrobust.evaluation.suite.evaluate` returns a :class:`SuiteResult`; its methods
(``to_csv``, ``plot``, ``save``, ...) call the writers below, and :func:`read_json` reads one
back. Both live here so that the writers and the result do not import each other.

Plots use matplotlib's Agg backend (no display needed). A 2-D grid gives a heatmap of the
mean return, one cell centred on each grid value; a 1-D suite a curve with a +-std band; for
3-D grids the heatmap shows the first two dimensions with the *worst* mean over the remaining
ones; sampled (non-grid) points give a scatter coloured by mean return. Parameter suites mark
the nominal model (a star, or a dashed line on a curve) where it lies in the plotted range.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CVAR_ALPHA = 0.1


@dataclass
class SuiteResult:
    """Returns of a policy over a suite's points.

    Attributes:
        suite: suite id.
        env_id: Gymnasium id of the task.
        names: perturbed parameter names (dimension order).
        points: ``P`` parameter settings.
        returns: ``(P, E)`` episode returns.
        lengths: ``(P, E)`` episode lengths.
        seed: evaluation seed.
        cvar_alpha: fraction of worst points averaged by :attr:`cvar`.
        grid_shape: points per dimension when ``points`` is a full grid, else None (a sample).
    """

    suite: str
    env_id: str
    names: tuple[str, ...]
    points: list[dict[str, float]]
    returns: np.ndarray
    lengths: np.ndarray
    seed: int = 0
    cvar_alpha: float = DEFAULT_CVAR_ALPHA
    grid_shape: tuple[int, ...] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def point_means(self) -> np.ndarray:
        """``(P,)`` mean return per point."""
        means: np.ndarray = self.returns.mean(axis=1)
        return means

    @property
    def point_stds(self) -> np.ndarray:
        """``(P,)`` return standard deviation per point (population, ddof=0)."""
        stds: np.ndarray = self.returns.std(axis=1)
        return stds

    @property
    def worst(self) -> float:
        """Minimum over points of the mean return."""
        return float(self.point_means.min())

    @property
    def mean(self) -> float:
        """Mean over points of the mean return."""
        return float(self.point_means.mean())

    @property
    def cvar(self) -> float:
        """Mean of the ``ceil(cvar_alpha * P)`` lowest point means."""
        k = max(1, math.ceil(self.cvar_alpha * len(self.points)))
        return float(np.sort(self.point_means)[:k].mean())

    @property
    def worst_point(self) -> dict[str, float]:
        """The parameter setting with the lowest mean return."""
        return dict(self.points[int(np.argmin(self.point_means))])

    def summary(self) -> dict[str, float]:
        """Headline numbers, all floats (``worst``, ``mean``, ``cvar``, ``cvar_alpha``, ``points``,
        ``episodes``), ready for a metrics log."""
        return {
            "worst": self.worst,
            "mean": self.mean,
            "cvar": self.cvar,
            "cvar_alpha": float(self.cvar_alpha),
            "points": float(len(self.points)),
            "episodes": float(self.returns.shape[1]),
        }

    def rows(self) -> list[dict[str, float]]:
        """One row per point: the parameters, ``mean``, ``std``, ``min``, ``max``, ``episodes``, ``mean_length``."""
        return [
            {
                **point,
                "mean": float(r.mean()),
                "std": float(r.std()),
                "min": float(r.min()),
                "max": float(r.max()),
                "episodes": int(r.size),
                "mean_length": float(n.mean()),
            }
            for point, r, n in zip(self.points, self.returns, self.lengths)
        ]

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`rows` as CSV."""
        return write_csv(self, path)

    def to_json(self, path: str | Path) -> Path:
        """Write the summary, settings and rows (and every episode return) as JSON."""
        return write_json(self, path)

    def plot(self, path: str | Path) -> Path:
        """Heatmap PNG for 2-D suites (worst over the other axes for 3-D), a curve for 1-D."""
        return plot(self, path)

    def save(self, out_dir: str | Path, *, tensorboard: bool = True) -> dict[str, Path]:
        """Write ``result.csv``, ``result.json``, the plot and TensorBoard events into ``out_dir``."""
        return write_reports(self, out_dir, tensorboard=tensorboard)

    def log_tensorboard(self, log_dir: str | Path, step: int = 0) -> None:
        """Scalars ``robust/{worst,mean,cvar}``, the table as text, and the plot as a figure."""
        log_tensorboard(self, log_dir, step)

    def __str__(self) -> str:
        return format_table(self)


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
    doc = json.loads(Path(path).read_text())
    names = tuple(doc["names"])
    return SuiteResult(
        suite=doc["suite"],
        env_id=doc["env_id"],
        names=names,
        points=[{n: float(row[n]) for n in names} for row in doc["rows"]],
        returns=np.asarray(doc["returns"], dtype=np.float64),
        lengths=np.asarray(doc["lengths"], dtype=np.int64),
        seed=int(doc["seed"]),
        cvar_alpha=float(doc["summary"]["cvar_alpha"]),
        grid_shape=None if doc["grid_shape"] is None else tuple(doc["grid_shape"]),
        settings=dict(doc["settings"]),
    )


def _nominal(result: SuiteResult) -> dict[str, float]:
    """Nominal values of the suite's dimensions (physical parameters only; {} otherwise)."""
    from rlrobust.envs.mujoco_params import perturbable_parameters
    from rlrobust.envs.suites import get_suite

    try:
        if get_suite(result.suite).disruption is not None:
            return {}
        nominal = perturbable_parameters(result.env_id)
    except Exception:  # a custom Suite object or an env that cannot be built here: no marker
        return {}
    return {n: nominal[n] for n in result.names if n in nominal}


def _cell_edges(values: np.ndarray) -> np.ndarray:
    """Edges of cells centred on sorted grid ``values`` (half-way between neighbours)."""
    if len(values) == 1:
        return np.array([values[0] - 0.5, values[0] + 0.5])
    mids = (values[1:] + values[:-1]) / 2
    return np.concatenate([[2 * values[0] - mids[0]], mids, [2 * values[-1] - mids[-1]]])


def _figure(result: SuiteResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means, names = result.point_means, result.names
    pts = np.array([[p[n] for n in names] for p in result.points])
    nominal = _nominal(result)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    title = f"{result.suite} ({result.env_id}): worst {result.worst:.1f}, mean {result.mean:.1f}"
    if len(names) == 1:
        order = np.argsort(pts[:, 0])
        x, m, s = pts[order, 0], means[order], result.point_stds[order]
        ax.plot(x, m, marker="o")
        ax.fill_between(x, m - s, m + s, alpha=0.25)
        if names[0] in nominal and x[0] <= nominal[names[0]] <= x[-1]:
            ax.axvline(nominal[names[0]], color="k", linestyle="--", linewidth=1, label="nominal")
            ax.legend()
        ax.set_xlabel(names[0])
        ax.set_ylabel("mean return")
    elif result.grid_shape is None:
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=means, cmap="viridis")
        fig.colorbar(sc, ax=ax, label="mean return")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        # Grid points are in itertools.product order (first dimension slowest).
        grid: np.ndarray = means.reshape(result.grid_shape)
        if grid.ndim > 2:
            grid = grid.reshape(grid.shape[0], grid.shape[1], -1).min(axis=2)
            title += f"\n(worst over {', '.join(names[2:])})"
        x0 = np.unique(pts[:, 0])
        x1 = np.unique(pts[:, 1])
        # One cell per grid point, centred on it; ticks at the grid values themselves.
        mesh = ax.pcolormesh(_cell_edges(x1), _cell_edges(x0), grid, cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label="mean return")
        ax.set_xticks(x1, [f"{v:.3g}" for v in x1])
        ax.set_yticks(x0, [f"{v:.3g}" for v in x0])
        if names[0] in nominal and names[1] in nominal:
            ax.plot(
                nominal[names[1]],
                nominal[names[0]],
                marker="*",
                markersize=14,
                color="white",
                markeredgecolor="black",
                linestyle="none",
                label="nominal",
            )
            ax.legend(loc="upper right", fontsize=8)
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
        for value, grid_row in zip(row_values, grid):
            lines.append(f"{value:>10.4g} " + " ".join(f"{m:>9.2f}" for m in grid_row))
        return "\n".join(lines)
    header = [*names, "mean", "std", "min", "max", "episodes"]
    widths = [max(10, len(h)) for h in header]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in result.rows():
        cells = [f"{row[n]:.4g}" for n in names] + [f"{row[k]:.2f}" for k in ("mean", "std", "min", "max")]
        cells.append(str(row["episodes"]))
        lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    return "\n".join(lines)


def format_report(
    result: SuiteResult, nominal_return: float | None = None, plot_path: str | Path | None = None
) -> str:
    """A short robustness report: what the suite varies, the nominal return next to the worst
    case, CVaR and mean over the suite, and where the plot is."""
    from rlrobust.envs.suites import get_suite

    try:
        varies = get_suite(result.suite).summary()
    except Exception:  # a custom Suite object
        varies = f"{result.suite}: {' x '.join(result.names)}"
    worst_at = ", ".join(f"{k}={v:.3g}" for k, v in result.worst_point.items())
    nominal = "" if nominal_return is None else f"nominal return {nominal_return:.1f}  |  "
    lines = [
        f"Robustness on {result.suite} ({len(result.points)} points x {result.returns.shape[1]} episodes)",
        f"  suite   {varies}",
        f"  return  {nominal}worst case {result.worst:.1f} (at {worst_at})  |  "
        f"CVaR {result.cvar_alpha:.0%} {result.cvar:.1f}  |  mean {result.mean:.1f}",
    ]
    if plot_path is not None:
        lines.append(f"  plot    {plot_path}")
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
