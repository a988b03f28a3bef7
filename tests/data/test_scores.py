"""Normalized scores on the D4RL ×100 scale (Fu et al., 2020, D4RL's ``infos.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from rlrobust.data import D4RL_REF_SCORES, Dataset, normalized_score


def dataset_with(meta):
    z = np.zeros((1, 1), np.float32)
    return Dataset(z, z, np.zeros(1, np.float32), z, np.zeros(1, bool), np.zeros(1, bool), metadata=meta)


def test_metadata_first_then_table_then_raw():
    ds = dataset_with(
        {"ref_min_score": -20.0, "ref_max_score": 180.0, "dataset_id": "mujoco/hopper/medium-v0"}
    )
    s = normalized_score([80.0, 130.0], ds, table=D4RL_REF_SCORES)
    assert s.normalized and s.source == "dataset metadata"
    assert s.score == pytest.approx(100 * (105 - -20) / 200)  # 62.5, not 0.625
    assert s.scores == pytest.approx((50.0, 75.0))
    assert "100*" in s.convention and "/ 100" in s.convention

    hopper = normalized_score(
        1607.0, dataset_with({"dataset_id": "mujoco/hopper/medium-v0"}), table=D4RL_REF_SCORES
    )
    assert hopper.source == "table['hopper']"
    assert hopper.score == pytest.approx(100 * (1607.0 + 20.272305) / (3234.3 + 20.272305))
    assert normalized_score(1607.0, table=D4RL_REF_SCORES, env_id="Hopper-v5").source == "table['hopper']"

    raw = normalized_score([10.0, 20.0], dataset_with({}))
    assert not raw.normalized and raw.score == 15.0 and raw.ref_min is None


def test_degenerate_reference():
    with pytest.raises(ValueError, match="must differ"):
        normalized_score(1.0, table={"x": (1.0, 1.0)}, env_id="x")
