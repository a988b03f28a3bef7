"""Run logging: TensorBoard events, a ``metrics.jsonl`` file, a progress bar, and optional
metric sinks (experiment trackers, :mod:`rlrobust.core.trackers`) that get every scalar too.

TensorBoard scalars go through :class:`BufferedEventWriter`: they are kept in memory and
written at every ``metrics.jsonl`` row and on close (see there why).

``metrics.jsonl`` holds one JSON object per logged step. After a resume, rows past the resumed
step are dropped first, so the file never holds a step twice; a last line torn by a kill in the
middle of a write is dropped too (with a message). TensorBoard events past the resumed step are
purged likewise, and those at it are kept.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
from tqdm.auto import tqdm

from rlrobust.core.errors import RlrobustError

if TYPE_CHECKING:
    from rlrobust.core.trackers import MetricSink


_FILE_IDS = itertools.count()  # tells apart event files one process opens in the same second


def masked_crc32c(blob: bytes) -> int:
    """The masked CRC-32C of ``blob``, as TFRecord files (TensorBoard's event files) store it.

    The checksum comes from ``google-crc32c`` (C; TensorBoard's own fallback is a Python loop per
    byte); the mask is TFRecord's: rotate right by 15 bits, add 0xA282EAD8, modulo 2**32.
    """
    crc: int = google_crc32c.value(blob)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class BufferedEventWriter:
    """A TensorBoard event file whose scalars are written in batches, at :meth:`flush`.

    ``torch.utils.tensorboard.SummaryWriter`` builds and serializes an event on every
    ``add_scalar`` and hands it to a writer thread, which computes the record checksums in pure
    Python while it holds the interpreter lock: with a scalar per training episode that is a
    large share of a fast env's loop. Here ``add_scalar`` appends a tuple; :meth:`flush`
    (the run logger calls it at every metrics row and on close; it also runs every
    ``max_pending`` scalars) writes them as the events ``SummaryWriter.add_scalar`` writes
    (``Summary.Value(tag, simple_value)`` at ``step``, the wall time of the call). The file
    starts like a ``SummaryWriter``'s, including ``purge_step``'s events: a reader drops the
    events of earlier files at steps >= ``purge_step`` (used on resume). The records' checksums
    come from :func:`masked_crc32c`, for all records of a flush at once.
    """

    def __init__(
        self, log_dir: str | Path, *, purge_step: int | None = None, max_pending: int = 10_000
    ) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog, SourceMetadata  # type: ignore[import-untyped]
        from tensorboard.compat.proto.summary_pb2 import Summary  # type: ignore[import-untyped]

        self._event, self._summary = Event, Summary
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        while True:  # the name SummaryWriter gives (time, host, pid, a per-process counter)
            name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_IDS)}"
            self.path = log_dir / name
            if not self.path.exists():
                break
        self._file = self.path.open("wb")
        self._pending: list[tuple[str, float, int, float]] = []
        self.max_pending = max_pending
        first = [
            Event(
                wall_time=time.time(),
                file_version="brain.Event:2",
                source_metadata=SourceMetadata(writer="tensorboard.summary.writer.event_file_writer"),
            )
        ]
        if purge_step is not None:
            first.append(Event(wall_time=time.time(), step=purge_step, file_version="brain.Event:2"))
            first.append(
                Event(wall_time=time.time(), step=purge_step, session_log=SessionLog(status=SessionLog.START))
            )
        self._write([event.SerializeToString() for event in first])

    def _write(self, events: list[bytes]) -> None:
        """Append serialized events as TFRecords (length, its masked CRC, data, its masked CRC)."""
        records = []
        for event in events:
            length = struct.pack("<Q", len(event))
            records += [
                length,
                struct.pack("<I", masked_crc32c(length)),
                event,
                struct.pack("<I", masked_crc32c(event)),
            ]
        self._file.write(b"".join(records))
        self._file.flush()

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Queue one scalar (written at the next :meth:`flush`)."""
        self._pending.append((tag, float(value), int(step), time.time()))
        if len(self._pending) >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        """Write the queued scalars and flush the file."""
        if not self._pending:
            return
        Event, Summary = self._event, self._summary
        self._write(
            [
                Event(
                    wall_time=wall_time,
                    step=step,
                    summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]),
                ).SerializeToString()
                for tag, value, step, wall_time in self._pending
            ]
        )
        self._pending.clear()

    def close(self) -> None:
        """Flush and close the file (a second call does nothing)."""
        if not self._file.closed:
            self.flush()
            self._file.close()


class RunLogger:
    """Writes scalar metrics to TensorBoard, ``metrics.jsonl`` and each sink; drives the progress bar.

    Sinks are not closed here: whoever opened a tracker closes it (the run also logs its
    report files to it after training).
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        total_steps: int,
        start_step: int = 0,
        progress: bool = True,
        sinks: Sequence[MetricSink] = (),
    ) -> None:
        self.run_dir = Path(run_dir)
        self.tb_dir = self.run_dir / "tb"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        _truncate_after(self.metrics_path, start_step)
        # purge_step drops events at steps >= it: the resumed step's own events were logged before
        # its checkpoint was written, so they stay.
        self.writer = BufferedEventWriter(self.tb_dir, purge_step=start_step + 1 if start_step else None)
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not progress,
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self._last_time = time.perf_counter()
        self._last_step = start_step
        self.steps_per_second = math.nan
        self.sinks = tuple(sinks)
        # A resumed run continues the row of its start step (e.g. the final evaluation of a run
        # resumed at total_steps merges into it instead of duplicating the step).
        rows = read_metrics(self.run_dir)
        self._last_row: dict[str, Any] | None = rows[-1] if rows and rows[-1]["step"] == start_step else None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Log scalar metrics at ``step`` (env steps online, gradient steps offline)."""
        now = time.perf_counter()
        if step > self._last_step:
            self.steps_per_second = (step - self._last_step) / max(now - self._last_time, 1e-9)
            metrics = {**metrics, "time/steps_per_second": self.steps_per_second}
        self._last_time, self._last_step = now, step
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()  # with the episode returns queued since the last row
        for sink in self.sinks:
            sink.log_metrics(step, metrics)
        if self._last_row is not None and self._last_row["step"] == step:
            # A second call for the same step (e.g. the final evaluation): merge into its row.
            self._last_row.update(metrics)
            lines = self.metrics_path.read_text().splitlines()
            lines[-1] = json.dumps(self._last_row)
            self.metrics_path.write_text("".join(line + "\n" for line in lines))
            return
        self._last_row = {"step": step, **metrics}
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(self._last_row) + "\n")

    def log_scalar(self, key: str, value: float, step: int) -> None:
        """One scalar to TensorBoard and the sinks, not to ``metrics.jsonl`` (per-episode returns)."""
        self.writer.add_scalar(key, value, step)
        for sink in self.sinks:
            sink.log_metrics(step, {key: value})

    def progress(self, step: int, recent_return: float | None = None) -> None:
        """Advance the progress bar to ``step``, showing steps/s and the recent training return."""
        self.bar.update(step - self.bar.n)
        postfix: dict[str, Any] = {}
        if not math.isnan(self.steps_per_second):
            postfix["steps/s"] = f"{self.steps_per_second:.0f}"
        if recent_return is not None:
            postfix["return"] = f"{recent_return:.1f}"
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def write(self, message: str) -> None:
        """Print a line without breaking the progress bar."""
        tqdm.write(message)

    def close(self) -> None:
        """Close the progress bar and the TensorBoard writer."""
        self.bar.close()
        self.writer.close()


def _truncate_after(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (they belong to work lost by an interrupted run), and a
    torn last line."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = _parse_rows(path, lines)
    if len(rows) < len(lines):
        tqdm.write(f"{path}: dropped a torn last line left by an interrupted write: {lines[-1][:80]!r}")
    kept = [line for line, row in zip(lines, rows) if row.get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))


def _parse_rows(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl``; an unparsable *last* line (a torn write) is left out."""
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise RlrobustError(
                f"{path} line {number} is not JSON ({exc}); only the last line can be torn by "
                "a kill, so the file was edited or damaged: fix or remove that line"
            ) from None
    return rows


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of a run's ``metrics.jsonl`` (a torn last line is left out)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return _parse_rows(path, [line for line in path.read_text().splitlines() if line.strip()])
