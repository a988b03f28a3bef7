"""Normalized scores on the D4RL ×100 scale.

Convention: ``score = 100 · (R − R_min) / (R_max − R_min)``, so 0 is the reference random policy
and 100 the reference expert (D4RL papers, IDQL, RIQL). Minari's ``get_normalized_score`` returns
the same quantity **divided by 100** (0–1 scale); never mix the two.

The reference pair comes from, in order: the dataset's metadata (``ref_min_score``/
``ref_max_score``, as Minari stores them), a user-supplied table, and otherwise no normalization
at all (raw returns are reported, flagged ``normalized=False``). :data:`D4RL_REF_SCORES` is D4RL's
own table (``d4rl/infos.py``); it only applies to D4RL-era (gym v2/v3 MuJoCo) datasets, whose
HDF5 files get it automatically when the file name starts with the task name. Gymnasium v5
Minari datasets are not comparable with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: D4RL reference returns (random, expert) per task; from D4RL's ``d4rl/infos.py`` (Fu et al., 2020).
D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}

CONVENTION = "100*(R - R_min)/(R_max - R_min) (D4RL x100 scale; Minari's get_normalized_score is this / 100)"


@dataclass(frozen=True)
class NormalizedScore:
    """A mean score with where its reference came from.

    Attributes:
        score: mean normalized score (×100 scale), or the mean raw return if ``normalized`` is False.
        raw_return: mean undiscounted return.
        scores: per-episode values on the same scale as ``score``.
        ref_min: reference random return, or ``None``.
        ref_max: reference expert return, or ``None``.
        source: ``"dataset metadata"``, ``"table"`` or ``"raw returns (no reference scores)"``.
        normalized: whether ``score`` is normalized.
        convention: the formula, written out.
    """

    score: float
    raw_return: float
    scores: tuple[float, ...]
    ref_min: float | None
    ref_max: float | None
    source: str
    normalized: bool
    convention: str = CONVENTION


def _task_key(env_id: str) -> str:
    """``"Hopper-v5"`` / ``"hopper-medium-v2"`` / ``"mujoco/hopper/medium-v0"`` → ``"hopper"``."""
    parts = env_id.lower().split("/")
    name = parts[1] if len(parts) > 1 and parts[0] in ("mujoco", "d4rl") else parts[0]
    return name.split("-")[0].split("_")[0]


def normalized_score(
    returns: float | Sequence[float] | np.ndarray,
    dataset: Any = None,
    *,
    table: Mapping[str, tuple[float, float]] | None = None,
    env_id: str | None = None,
) -> NormalizedScore:
    """Normalize episode returns on the ×100 scale (see the module docstring for the convention).

    Args:
        returns: one return or the returns of several evaluation episodes.
        dataset: a :class:`~rlrobust.data.Dataset` (or anything with a ``metadata`` dict) whose
            ``ref_min_score``/``ref_max_score`` take precedence.
        table: user references ``{task: (R_min, R_max)}``, e.g. :data:`D4RL_REF_SCORES`; looked up
            by ``env_id`` exactly, then by its task name (``"Hopper-v5"`` → ``"hopper"``).
        env_id: the environment or dataset id used for the table look-up (defaults to the
            dataset's id).

    Raises:
        ValueError: ``R_max == R_min`` in the chosen reference, or no returns.
    """
    values = np.atleast_1d(np.asarray(returns, dtype=np.float64))
    if values.size == 0:
        raise ValueError("normalized_score needs at least one return")
    meta = dict(getattr(dataset, "metadata", None) or {})
    ref: tuple[float, float] | None = None
    source = "raw returns (no reference scores)"
    if meta.get("ref_min_score") is not None and meta.get("ref_max_score") is not None:
        ref, source = (float(meta["ref_min_score"]), float(meta["ref_max_score"])), "dataset metadata"
    elif table:
        key = env_id or meta.get("dataset_id") or ""
        for candidate in (key, _task_key(key)):
            if candidate in table:
                ref, source = (
                    (float(table[candidate][0]), float(table[candidate][1])),
                    f"table[{candidate!r}]",
                )
                break
    if ref is None:
        return NormalizedScore(
            float(values.mean()), float(values.mean()), tuple(values.tolist()), None, None, source, False
        )
    lo, hi = ref
    if hi == lo:
        raise ValueError(f"reference scores must differ, got R_min = R_max = {lo} (from {source})")
    scores = 100.0 * (values - lo) / (hi - lo)
    return NormalizedScore(
        float(scores.mean()), float(values.mean()), tuple(scores.tolist()), lo, hi, source, True
    )
