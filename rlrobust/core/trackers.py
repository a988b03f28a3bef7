"""Optional experiment trackers: Weights & Biases and MLflow, next to the TensorBoard default.

A tracker is a *sink*: :class:`~rlrobust.core.logging.RunLogger` hands it every scalar it writes
to TensorBoard (same names, same steps), and the run that opened it logs the resolved config at
the start and the report files (``config.yaml``, ``final_evaluation.json``, ``evaluation/``) at
the end. TensorBoard events and ``metrics.jsonl`` are always written; a tracker adds a copy.

Choose one with ``logger=<name>`` (``conf/logger/``) or ``rlrobust.train(..., logger=<name>)``:

* ``tensorboard`` (default): no tracker.
* ``wandb``: ``wandb.init`` in ``mode: offline`` by default (no network; ``wandb sync <run
  dir>/wandb/offline-run-*`` uploads later), files under the run dir.
* ``mlflow``: an MLflow file store in ``<run dir>/mlruns`` by default (``mlflow ui
  --backend-store-uri <run dir>/mlruns``), or any ``tracking_uri``.

A resumed run continues the same tracker run: its id is kept in ``<run dir>/tracker.json``.
Each tracker needs its extra (``pip install rlrobust[wandb]`` / ``rlrobust[mlflow]``); without
it :func:`make_tracker` raises :class:`~rlrobust.core.errors.MissingDependencyError` before training.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rlrobust.core.errors import ConfigError, MissingDependencyError, choices

TRACKERS = ("tensorboard", "wandb", "mlflow")


@runtime_checkable
class MetricSink(Protocol):
    """Receives every scalar row the run logger writes."""

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Scalars at ``step`` (env steps online, gradient steps offline)."""


class Tracker(MetricSink, Protocol):
    """A metric sink that also stores the run's config and report files."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The resolved run config (nested plain containers)."""

    def log_files(self, root: Path, paths: Iterable[Path]) -> None:
        """Report files, stored under their path relative to ``root`` (the run dir)."""

    def close(self) -> None:
        """Finish the tracker run (flush, mark it finished)."""


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"logger={extra} needs the {module!r} package, which is not installed; install the extra: "
            f"pip install 'rlrobust[{extra}]' (or use the default logger=tensorboard)"
        ) from exc


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"agent.learning_rate": "0.001", ...}``: MLflow params are flat strings."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return flat


class _RunIds:
    """``<run dir>/tracker.json``: the tracker run of this run dir, so a resume continues it."""

    def __init__(self, run_dir: Path, kind: str) -> None:
        self.path, self.kind = run_dir / "tracker.json", kind

    def get(self) -> str | None:
        if not self.path.exists():
            return None
        run_id: str | None = json.loads(self.path.read_text()).get(self.kind)
        return run_id

    def set(self, run_id: str) -> None:
        ids = json.loads(self.path.read_text()) if self.path.exists() else {}
        ids[self.kind] = run_id
        self.path.write_text(json.dumps(ids, indent=2))


class WandbTracker:
    """Weights & Biases run (offline by default); see the module docstring.

    Args:
        run_dir: the rlrobust run dir (W&B files go to ``<dir or run_dir>/wandb``).
        name: the W&B run name (default: the run dir's name).
        project: W&B project.
        entity: W&B entity (user or team); None: the default.
        mode: ``offline`` (no network), ``online`` or ``disabled``.
        dir: where W&B writes its files; None: the run dir.
        group: W&B group (e.g. one per sweep).
        tags: W&B tags.
    """

    MODES = ("offline", "online", "disabled")

    def __init__(
        self,
        run_dir: Path,
        *,
        name: str | None = None,
        project: str = "rlrobust",
        entity: str | None = None,
        mode: str = "offline",
        dir: str | None = None,
        group: str | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        if mode not in self.MODES:
            raise ConfigError(f"unknown W&B mode {mode!r}; valid: {choices(self.MODES)}")
        wandb = self._wandb = _require("wandb", "wandb")
        ids = _RunIds(run_dir, "wandb")
        previous = ids.get()
        self.run = wandb.init(
            project=project,
            entity=entity,
            mode=mode,
            dir=str(dir or run_dir),
            group=group,
            tags=list(tags),
            name=name or run_dir.name,
            id=previous,
            resume="allow" if previous else None,
            # No console capture or system-metrics thread: the trainer owns the terminal and the CPU.
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        ids.set(self.run.id)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log scalars at ``step``."""
        self.run.log(dict(metrics), step=step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Store the resolved config as the W&B run config."""
        self.run.config.update(dict(config), allow_val_change=True)

    def log_files(self, root: Path, paths: Iterable[Path]) -> None:
        """Copy report files into the W&B run's files."""
        for path in paths:
            self.run.save(str(path), base_path=str(root), policy="now")

    def close(self) -> None:
        """Finish the W&B run and wait until its files are written."""
        self.run.finish()
        # finish() can return before W&B's service has flushed the run file (seen on a loaded
        # machine); teardown waits for the service to shut down, so the offline run is complete.
        self._wandb.teardown()


class MlflowTracker:
    """MLflow run (a file store in the run dir by default); see the module docstring.

    Args:
        run_dir: the rlrobust run dir.
        name: the MLflow run name (default: the run dir's name).
        tracking_uri: an MLflow tracking URI; None: a file store in ``<run_dir>/mlruns``.
        experiment: MLflow experiment name (created when missing).
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        name: str | None = None,
        tracking_uri: str | None = None,
        experiment: str = "rlrobust",
    ) -> None:
        _require("mlflow", "mlflow")
        if tracking_uri is None:
            tracking_uri = (run_dir / "mlruns").resolve().as_uri()
        if tracking_uri.startswith("file:") or "://" not in tracking_uri:
            # MLflow 3 keeps its file store in maintenance mode behind this opt-in. It is the one
            # backend that needs neither a server nor the full mlflow package (sqlite needs it).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        ids = _RunIds(run_dir, "mlflow")
        previous = ids.get()
        if previous is not None:
            self.run_id = previous
            self.client.update_run(previous, status="RUNNING")
        else:
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            run = self.client.create_run(
                experiment_id,
                run_name=name or run_dir.name,
                tags={"rlrobust.run_dir": str(run_dir.resolve())},
            )
            self.run_id = run.info.run_id
            ids.set(self.run_id)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log scalars at ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()]
        )

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The config as flat params (``agent.learning_rate``) and as ``config.json``."""
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in _flatten(config).items()]  # MLflow's value limit
        existing = self.client.get_run(self.run_id).data.params
        params = [p for p in params if p.key not in existing]  # a resume may not re-log a param
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self.client.log_dict(self.run_id, dict(config), "config.json")

    def log_files(self, root: Path, paths: Iterable[Path]) -> None:
        """Copy report files into the run's artifacts, keeping their folders."""
        for path in paths:
            folder = path.parent.relative_to(root).as_posix()
            self.client.log_artifact(self.run_id, str(path), None if folder == "." else folder)

    def close(self) -> None:
        """Mark the MLflow run finished."""
        self.client.set_terminated(self.run_id)


def make_tracker(settings: Mapping[str, Any] | None, run_dir: str | Path) -> Tracker | None:
    """The tracker a ``logger:`` config node names, or None for ``tensorboard``.

    Raises:
        ConfigError: an unknown logger name or option.
        MissingDependencyError: the tracker's package is not installed (names the extra).
    """
    options = dict(settings or {"name": "tensorboard"})
    name = options.pop("name", "tensorboard")
    if name not in TRACKERS:
        raise ConfigError(f"unknown logger {name!r}; valid: {choices(TRACKERS)}")
    if name == "tensorboard":
        return None
    cls = WandbTracker if name == "wandb" else MlflowTracker
    valid = [p for p in inspect.signature(cls).parameters if p != "run_dir"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown option(s) {choices(unknown)} of logger={name}; valid: {choices(valid)}")
    return cls(Path(run_dir), **options)


def report_files(run_dir: str | Path) -> list[Path]:
    """The run's report files a tracker stores at the end: config, final metrics, suite report."""
    run_dir = Path(run_dir)
    files = [run_dir / "config.yaml", run_dir / "final_evaluation.json"]
    evaluation = run_dir / "evaluation"
    if evaluation.is_dir():
        files += sorted(
            p for p in evaluation.rglob("*") if p.is_file() and "tb" not in p.relative_to(evaluation).parts
        )
    return [p for p in files if p.exists()]
