"""RIQL's corruption protocol (Yang et al., ICLR 2024): seeded, exact count, the rest bitwise unchanged, recorded."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.data import Dataset, corrupt


def make_dataset(n: int = 1000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3)).astype(np.float32) * np.array([1.0, 2.0, 0.5], np.float32)
    return Dataset(
        observations=obs,
        actions=rng.uniform(-0.5, 0.5, size=(n, 2)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=(obs + 0.1).astype(np.float32),
        terminals=rng.random(n) < 0.05,
        timeouts=np.zeros(n, bool),
        metadata={"action_space": gym.spaces.Box(-1, 1, (2,), np.float32), "corruption": []},
    )


COLUMNS = {
    "observations": "observations",
    "actions": "actions",
    "rewards": "rewards",
    "dynamics": "next_observations",
}
FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@pytest.mark.parametrize("kind", list(COLUMNS))
@pytest.mark.parametrize("mode", ["random", "adversarial"])
def test_h7_exact_count_rest_unchanged_seeded(kind, mode):
    ds = make_dataset()
    before = {f: getattr(ds, f).copy() for f in FIELDS}
    critic = lambda s, a: (s**2).sum(-1) + (a**2).sum(-1)  # noqa: E731
    actor = lambda s: torch.tanh(s[:, :2])  # noqa: E731
    kw = dict(kind=kind, mode=mode, rate=0.3, scale=1.0, seed=7, critic=critic, actor=actor, attack_steps=5)
    out = corrupt(ds, **kw)
    for f in FIELDS:  # the input is untouched
        np.testing.assert_array_equal(getattr(ds, f), before[f])
    rows = out.extras["corrupted"]
    assert rows.sum() == round(0.3 * len(ds)) == 300
    column = COLUMNS[kind]
    changed = getattr(out, column) != getattr(ds, column)
    changed = changed.reshape(len(ds), -1).any(axis=1)
    np.testing.assert_array_equal(changed, rows)  # exactly the flagged rows differ
    for f in FIELDS:
        if f != column:
            assert getattr(out, f).tobytes() == getattr(ds, f).tobytes()
    assert getattr(out, column)[~rows].tobytes() == getattr(ds, column)[~rows].tobytes()
    assert out.metadata["corruption"] == [
        {"kind": kind, "mode": mode, "rate": 0.3, "scale": 1.0, "seed": 7, "count": 300}
    ]
    again = corrupt(ds, **kw)
    assert getattr(again, column).tobytes() == getattr(out, column).tobytes()
    other = corrupt(ds, **{**kw, "seed": 8})
    assert not np.array_equal(other.extras["corrupted"], rows)


def test_random_noise_within_scale_times_std():
    ds = make_dataset()
    out = corrupt(ds, kind="observations", rate=0.5, scale=0.2, seed=0)
    rows = out.extras["corrupted"]
    std = ds.observations.std(axis=0)
    delta = np.abs(out.observations[rows] - ds.observations[rows])
    assert np.all(delta <= 0.2 * std + 1e-6)
    assert np.all(delta.max(axis=0) > 0.15 * std)  # the range is used, not just a sliver


def test_reward_corruption_values():
    ds = make_dataset()
    adv = corrupt(ds, kind="rewards", mode="adversarial", rate=0.2, scale=0.5, seed=1)
    rows = adv.extras["corrupted"]
    np.testing.assert_array_equal(adv.rewards[rows], (-0.5 * ds.rewards[rows]).astype(np.float32))
    rnd = corrupt(ds, kind="rewards", rate=0.2, scale=0.5, seed=1)
    assert np.all(np.abs(rnd.rewards[rnd.extras["corrupted"]]) <= 15.0)  # 30·U[−ε, ε]


def test_adversarial_attack_lowers_q_and_respects_box():
    ds = make_dataset(200)
    critic = lambda s, a: (s * torch.tensor([1.0, -1.0, 2.0])).sum(-1)  # noqa: E731  linear in s
    out = corrupt(
        ds,
        kind="observations",
        mode="adversarial",
        rate=1.0,
        scale=0.3,
        seed=0,
        critic=critic,
        attack_steps=200,
    )
    std = ds.observations.std(axis=0)
    delta = out.observations - ds.observations
    assert np.all(np.abs(delta) <= 0.3 * std + 1e-5)
    # A linear Q is minimised at the corner p = −ε·sign(w).
    np.testing.assert_allclose(delta.mean(axis=0) / std, [-0.3, 0.3, -0.3], atol=0.02)
    q = lambda x: (x * np.array([1.0, -1.0, 2.0])).sum(-1)  # noqa: E731
    assert np.all(q(out.observations) < q(ds.observations))


def test_errors_and_stacking():
    ds = make_dataset()
    with pytest.raises(ConfigError, match="unknown corruption kind 'obs'"):
        corrupt(ds, kind="obs", rate=0.1, scale=1.0)
    with pytest.raises(ConfigError, match="needs a differentiable critic"):
        corrupt(ds, kind="actions", mode="adversarial", rate=0.1, scale=1.0)
    first = corrupt(ds, kind="rewards", rate=0.1, scale=1.0, seed=0)
    both = corrupt(first, kind="actions", rate=0.1, scale=1.0, seed=1)
    assert both.extras["corrupted"].sum() > first.extras["corrupted"].sum()
    assert [r["kind"] for r in both.metadata["corruption"]] == ["rewards", "actions"]
    assert np.all(np.abs(both.actions) <= 1.0)  # clipped to the action box


def test_dataset_from_config_loads_and_corrupts(tmp_path):
    import h5py

    from rlrobust.data import dataset_from_config

    ds = make_dataset(100)
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
            f[k] = getattr(ds, k)
    assert dataset_from_config({"id": None}) is None
    cfg = {
        "id": str(tmp_path / "d.hdf5"),
        "allow_nonfinite": False,
        "corruption": {"kind": "rewards", "mode": "adversarial", "rate": 0.1, "scale": 1.0, "seed": 0},
    }
    out = dataset_from_config(cfg)
    rows = out.extras["corrupted"]
    assert rows.sum() == 10
    np.testing.assert_array_equal(out.rewards[rows], -ds.rewards[rows])


def test_fingerprint_tells_datasets_with_the_same_id_apart():
    ds = make_dataset()
    assert ds.fingerprint() == make_dataset().fingerprint() == ds.copy().fingerprint()
    relabelled = ds.copy()
    relabelled.metadata["dataset_id"] = "another/name-v0"
    assert relabelled.fingerprint() == ds.fingerprint()  # metadata is not data
    one_reward = ds.copy()
    one_reward.rewards[123] += 1e-3
    assert one_reward.fingerprint() != ds.fingerprint()
    fingerprints = {corrupt(ds, kind=k, rate=0.3, scale=1.0, seed=0).fingerprint() for k in COLUMNS}
    reseeded = corrupt(ds, kind="observations", rate=0.3, scale=1.0, seed=1).fingerprint()
    assert len(fingerprints | {reseeded, ds.fingerprint()}) == len(COLUMNS) + 2
    flagged = ds.copy()
    flagged.extras["corrupted"] = np.zeros(len(ds), bool)
    assert flagged.fingerprint() != ds.fingerprint()


def test_fingerprint_of_object_arrays_is_stable_and_byte_order_does_not_count():
    ds = make_dataset(n=50)
    ds.extras["info/name"] = np.array([f"ep{i}" for i in range(50)], dtype=object)
    twin = ds.copy()
    twin.extras["info/name"] = np.array([f"ep{i}" for i in range(50)], dtype=object)  # other objects
    assert ds.fingerprint() == twin.fingerprint()
    swapped = ds.copy()
    swapped.rewards = ds.rewards.astype(ds.rewards.dtype.newbyteorder(">"))
    assert swapped.fingerprint() == ds.fingerprint()
