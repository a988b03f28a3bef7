"""The run logger's TensorBoard file: what SummaryWriter would write, purge on resume, flushes."""

from __future__ import annotations

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlrobust.core.logging import BufferedEventWriter


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_buffered_writer_writes_what_summary_writer_writes(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    values = [("train/episode_return", 1.5, 3), ("train/episode_return", np.float64(2.25), 7)]
    values += [("loss/critic", torch.tensor(0.125), 10), ("train/episodes", 4, 10)]
    reference = SummaryWriter(str(tmp_path / "reference"))
    ours = BufferedEventWriter(tmp_path / "ours")
    for tag, value, step in values:
        reference.add_scalar(tag, value, step)
        ours.add_scalar(tag, value, step)
    reference.close()
    ours.close()
    assert _scalars(tmp_path / "ours") == _scalars(tmp_path / "reference")
    assert _scalars(tmp_path / "ours")["train/episode_return"] == [(3, 1.5), (7, 2.25)]


def test_scalars_are_written_at_flush_and_every_max_pending(tmp_path):
    writer = BufferedEventWriter(tmp_path, max_pending=3)
    writer.add_scalar("a", 1.0, 1)
    writer.add_scalar("a", 2.0, 2)
    assert _scalars(tmp_path) == {}
    writer.add_scalar("a", 3.0, 3)  # the third pending scalar writes all three
    assert [step for step, _ in _scalars(tmp_path)["a"]] == [1, 2, 3]
    writer.add_scalar("a", 4.0, 4)
    writer.flush()
    assert [step for step, _ in _scalars(tmp_path)["a"]] == [1, 2, 3, 4]
    writer.close()
    writer.close()  # a second close is harmless


def test_purge_step_drops_the_earlier_files_later_events(tmp_path):
    first = BufferedEventWriter(tmp_path)
    for step in range(1, 11):
        first.add_scalar("a", float(step), step)
    first.close()
    # (a reader takes the files in name order: creation second, host, pid, then a counter)
    resumed = BufferedEventWriter(tmp_path, purge_step=6)
    for step in range(6, 9):
        resumed.add_scalar("a", 100.0 + step, step)
    resumed.close()
    assert _scalars(tmp_path)["a"] == [(s, float(s)) for s in range(1, 6)] + [
        (s, 100.0 + s) for s in (6, 7, 8)
    ]


def test_masked_crc32c_equals_tensorboards():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

    from rlrobust.core.logging import masked_crc32c

    rng = np.random.default_rng(0)
    blobs = [b"", b"a", b"123456789"] + [rng.bytes(int(n)) for n in rng.integers(0, 90, size=60)]
    assert [masked_crc32c(blob) for blob in blobs] == [reference(blob) for blob in blobs]
