"""Offline datasets: load (Minari id/folder, D4RL HDF5), validate, record, corrupt, score.

* :func:`load_dataset` → :class:`Dataset` (flat, validated transitions; fills
  ``ReplayBuffer.from_dataset`` directly) or :class:`DatasetError`.
* :func:`record_dataset` writes a Minari dataset from a policy (:func:`write_transitions` from
  flat transitions, e.g. a replay buffer); :func:`corrupt` applies RIQL's
  corruption protocol; :func:`normalized_score` reports scores on the D4RL ×100 scale.
* :func:`dataset_from_config` is what the trainer/CLI call with the ``dataset`` config group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlrobust.data.corruption import corrupt
from rlrobust.data.dataset import Dataset, DatasetError, check_spaces, validate
from rlrobust.data.loading import load_dataset, minari_root
from rlrobust.data.recording import load_sb3_model, record_dataset, resolve_policy, write_transitions
from rlrobust.data.scores import D4RL_REF_SCORES, NormalizedScore, normalized_score

__all__ = [
    "D4RL_REF_SCORES",
    "Dataset",
    "DatasetError",
    "NormalizedScore",
    "check_spaces",
    "corrupt",
    "dataset_from_config",
    "load_dataset",
    "load_sb3_model",
    "minari_root",
    "normalized_score",
    "record_dataset",
    "resolve_policy",
    "validate",
    "write_transitions",
]


def dataset_from_config(cfg: Mapping[str, Any] | None, **load_kwargs: Any) -> Dataset | None:
    """Load (and optionally corrupt) the dataset a ``conf/dataset/*.yaml`` describes.

    ``cfg`` keys: ``id`` (Minari id or path; ``None`` means no dataset → returns ``None``),
    ``allow_nonfinite``, ``corruption`` (``None`` or a mapping of :func:`corrupt` arguments:
    ``kind, mode, rate, scale, seed``; adversarial modes need a critic and cannot come from a
    config file). Extra ``load_kwargs`` go to :func:`load_dataset` (e.g. the env's spaces).
    """
    if not cfg or cfg.get("id") is None:
        return None
    dataset = load_dataset(cfg["id"], allow_nonfinite=bool(cfg.get("allow_nonfinite", False)), **load_kwargs)
    corruption = cfg.get("corruption")
    if corruption:
        dataset = corrupt(dataset, **{k: corruption[k] for k in corruption})
    return dataset
