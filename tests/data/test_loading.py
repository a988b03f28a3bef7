"""Dataset loading and validation (round trips, terminal/timeout flags, broken files, non-finite values, space mismatches, missing datasets), all on datasets built here."""

from __future__ import annotations

import os

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from rlrobust.core.errors import RlrobustError
from rlrobust.data import (
    D4RL_REF_SCORES,
    Dataset,
    DatasetError,
    check_spaces,
    load_dataset,
    record_dataset,
)


def zero_policy(obs):
    return np.array([0.5], dtype=np.float32)


def check_counting_transitions(ds: Dataset, episodes: int, max_steps: int, terminate_at: int) -> None:
    """Independent reference for CountingEnv data: even seeds run to the time limit, odd seeds
    terminate at ``terminate_at``; obs = [seed, t], reward = 0.5 + t."""
    rows = []
    for ep in range(episodes):
        length = terminate_at if ep % 2 else max_steps
        for t in range(length):
            last = t == length - 1
            rows.append((ep, t, 0.5 + t + 1, last and ep % 2 == 1, last and ep % 2 == 0))
    ref = np.array(rows, dtype=np.float64)
    assert len(ds) == len(rows)
    np.testing.assert_array_equal(ds.observations, ref[:, :2])
    np.testing.assert_array_equal(ds.next_observations[:, 0], ref[:, 0])  # same episode, always
    np.testing.assert_array_equal(ds.next_observations[:, 1], ref[:, 1] + 1)
    np.testing.assert_allclose(ds.rewards, ref[:, 2])
    np.testing.assert_array_equal(ds.terminals, ref[:, 3].astype(bool))
    np.testing.assert_array_equal(ds.timeouts, ref[:, 4].astype(bool))
    assert ds.actions.shape == (len(rows), 1) and ds.observations.dtype == np.float32


def test_h1_recorded_minari_round_trip(counting_env):
    ds = record_dataset(
        zero_policy,
        counting_env(4, terminate_at=2),
        dataset_id="test/count/rt-v0",
        episodes=3,
        ref_min_score=0.0,
        ref_max_score=10.0,
    )
    check_counting_transitions(ds, episodes=3, max_steps=4, terminate_at=2)
    # Minari's own view of the files agrees (integrity: T+1 observations, step counts).
    mds = minari.load_dataset("test/count/rt-v0")
    assert mds.total_steps == len(ds) == 10 and mds.total_episodes == 3
    for ep in mds.iterate_episodes():
        assert len(ep.observations) == len(ep.rewards) + 1
    assert ds.metadata["ref_min_score"] == 0.0 and ds.metadata["ref_max_score"] == 10.0
    assert isinstance(ds.metadata["observation_space"], gym.spaces.Box)
    np.testing.assert_allclose(ds.episode_returns(), [4 * 0.5 + 10, 2 * 0.5 + 3, 4 * 0.5 + 10])
    # The same dataset from its folder.
    again = load_dataset(os.path.join(os.environ["MINARI_DATASETS_PATH"], "test/count/rt-v0"))
    np.testing.assert_array_equal(again.next_observations, ds.next_observations)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_h1_minari_data_collector(counting_env, jax_tree_util):
    """A dataset written by Minari's own DataCollector loads with the right transitions."""
    env = minari.DataCollector(counting_env(4, terminate_at=2), record_infos=True)
    for seed in range(4):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(np.array([0.5], dtype=np.float32))
            done = term or trunc
    env.create_dataset("test/count/collector-v0", algorithm_name="constant", description="test")
    ds = load_dataset("test/count/collector-v0", info_keys=("params", "t"))
    check_counting_transitions(ds, episodes=4, max_steps=4, terminate_at=2)
    np.testing.assert_array_equal(ds.extras["info/params/mass"], 1.0 + ds.observations[:, 0])
    np.testing.assert_array_equal(ds.extras["info/t"], ds.observations[:, 1] + 1)


def test_h2_terminal_and_timeout_is_terminal(counting_env):
    # Odd and even episodes terminate at t=3, exactly when the time limit truncates too.
    ds = record_dataset(
        zero_policy,
        counting_env(3, terminate_at=3, odd_only=False),
        dataset_id="test/count/both-v0",
        episodes=2,
    )
    raw = minari.load_dataset("test/count/both-v0")
    assert all(e.terminations[-1] and e.truncations[-1] for e in raw.iterate_episodes())
    np.testing.assert_array_equal(ds.terminals, [False, False, True] * 2)
    assert not ds.timeouts.any()


def write_d4rl(path, n_obs=3, drop=(), **overrides):
    """A D4RL-layout file: episode A (3 steps, timeout), episode B (2 steps, terminal)."""
    obs = np.arange(5 * n_obs, dtype=np.float32).reshape(5, n_obs)
    data = {
        "observations": obs,
        "actions": np.linspace(-1, 1, 5, dtype=np.float32).reshape(5, 1),
        "rewards": np.arange(5, dtype=np.float32).reshape(5, 1),  # (N, 1) as in old files
        "terminals": np.array([0, 0, 0, 0, 1], dtype=bool),
        "timeouts": np.array([0, 0, 1, 0, 0], dtype=bool),
    }
    data.update(overrides)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if k not in drop:
                f[k] = v
    return obs


def test_d4rl_hdf5_without_next_observations(tmp_path):
    path = tmp_path / "hopper-medium-v2.hdf5"
    obs = write_d4rl(path)
    ds = load_dataset(path)
    # Row 2 (the timeout step) has no recorded successor and is dropped; row 1 ends episode A.
    np.testing.assert_array_equal(ds.observations, obs[[0, 1, 3, 4]])
    np.testing.assert_array_equal(ds.next_observations, obs[[1, 2, 4, 4]])  # terminal: masked copy
    np.testing.assert_array_equal(ds.rewards, [0, 1, 3, 4])
    np.testing.assert_array_equal(ds.terminals, [False, False, False, True])
    np.testing.assert_array_equal(ds.timeouts, [False, True, False, False])
    assert (ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]) == D4RL_REF_SCORES["hopper"]


def test_d4rl_hdf5_with_next_observations_keeps_every_row(tmp_path):
    nxt = np.arange(15, dtype=np.float32).reshape(5, 3) + 100
    write_d4rl(
        tmp_path / "custom.hdf5",
        next_observations=nxt,
        terminals=np.array([0, 0, 1, 0, 1], bool),
        timeouts=np.array([0, 0, 1, 0, 0], bool),
    )
    ds = load_dataset(tmp_path / "custom.hdf5")
    np.testing.assert_array_equal(ds.next_observations, nxt)
    np.testing.assert_array_equal(ds.terminals, [False, False, True, False, True])
    assert not ds.timeouts[2]  # terminal + timeout counts as terminal
    assert ds.metadata["ref_min_score"] is None


def test_h3_truncated_garbage_and_missing_keys(tmp_path, counting_env):
    record_dataset(zero_policy, counting_env(4), dataset_id="test/count/trunc-v0", episodes=2)
    data_file = tmp_path / "minari" / "test/count/trunc-v0" / "data" / "main_data.hdf5"
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(DatasetError, match="cannot read Minari dataset test/count/trunc-v0"):
        load_dataset("test/count/trunc-v0")

    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DatasetError, match=r"garbage\.hdf5.*truncated or not an HDF5 file"):
        load_dataset(garbage)

    write_d4rl(tmp_path / "norew.hdf5", drop=("rewards", "terminals"))
    with pytest.raises(DatasetError, match=r"norew\.hdf5: missing keys \['rewards', 'terminals'\]"):
        load_dataset(tmp_path / "norew.hdf5")


@pytest.mark.parametrize("key", ["observations", "rewards"])
def test_h4_nonfinite_values(tmp_path, key):
    values = {
        "observations": np.arange(15, dtype=np.float32).reshape(5, 3),
        "rewards": np.arange(5, dtype=np.float32),
    }
    bad = values[key].copy()
    bad.reshape(5, -1)[3, 0] = np.nan
    bad.reshape(5, -1)[4, -1] = np.inf
    write_d4rl(tmp_path / "nan.hdf5", **{key: bad}, timeouts=np.zeros(5, bool))
    with pytest.raises(DatasetError, match=rf"2 non-finite values \(NaN/inf\) in {key}, first at row 3"):
        load_dataset(tmp_path / "nan.hdf5")
    ds = load_dataset(tmp_path / "nan.hdf5", allow_nonfinite=True)
    assert np.isnan(getattr(ds, key)[3]).any()


def test_h5_space_mismatch_shows_both_spaces(counting_env):
    ds = record_dataset(zero_policy, counting_env(4), dataset_id="test/count/space-v0", episodes=1)
    wrong_obs = gym.spaces.Box(-1, 1, (5,), np.float32)
    with pytest.raises(
        DatasetError,
        match=r"observation space: dataset Box\(-inf, inf, \(2,\).*vs env Box\(-1\.0, 1\.0, \(5,\)",
    ):
        check_spaces(ds, wrong_obs, CountingEnvSpaces.action)
    small = gym.spaces.Box(-0.1, 0.1, (1,), np.float32)  # recorded actions are 0.5
    with pytest.raises(DatasetError, match="lie outside the env action space"):
        check_spaces(ds, CountingEnvSpaces.obs, small)
    check_spaces(ds, CountingEnvSpaces.obs, CountingEnvSpaces.action)  # fits
    with pytest.raises(DatasetError, match="action space: dataset"):
        load_dataset(
            "test/count/space-v0",
            observation_space=CountingEnvSpaces.obs,
            action_space=gym.spaces.Discrete(3),
        )


class CountingEnvSpaces:
    obs = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def test_h6_absent_dataset_names_id_path_and_command(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("mujoco/hopper/medium-v0")
    msg = str(err.value)
    assert "mujoco/hopper/medium-v0" in msg and str(tmp_path / "minari") in msg
    assert "`minari download mujoco/hopper/medium-v0`" in msg
    assert isinstance(err.value, RlrobustError)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nothing.hdf5")


def test_validate_rejects_inconsistent_arrays():
    from rlrobust.data import validate

    obs = np.zeros((4, 2), np.float32)
    good = Dataset(
        obs, np.zeros((4, 1), np.float32), np.zeros(4, np.float32), obs, np.zeros(4, bool), np.zeros(4, bool)
    )
    validate(good)
    with pytest.raises(DatasetError, match="different lengths"):
        validate(Dataset(obs, np.zeros((3, 1)), np.zeros(4), obs, np.zeros(4, bool), np.zeros(4, bool)))
    both = np.array([0, 0, 0, 1], bool)
    with pytest.raises(DatasetError, match="both terminal and timeout"):
        validate(Dataset(obs, np.zeros((4, 1)), np.zeros(4), obs, both, both))
