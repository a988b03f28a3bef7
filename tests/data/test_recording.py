"""Recording Minari datasets from policies: checkpoints, SB3 zips, perturbed envs."""

from __future__ import annotations

import gymnasium as gym
import minari
import numpy as np
import pytest

import rlrobust
from rlrobust.core.errors import ConfigError
from rlrobust.data import DatasetError, load_dataset, record_dataset, resolve_policy


def test_records_perturbation_params_and_reference_scores():
    perturbation = {"kind": "static", "values": {"pole_mass": 5.0}}
    policy = lambda obs: np.array([1.0], dtype=np.float32)  # noqa: E731  pushes one way: falls fast
    ds = record_dataset(
        policy,
        "InvertedPendulum-v5",
        dataset_id="test/ip/pert-v0",
        episodes=2,
        seed=3,
        perturbation=perturbation,
        ref_min_score=0.0,
        ref_max_score=1000.0,
    )
    assert ds.metadata["perturbation"] == perturbation
    assert (ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]) == (0.0, 1000.0)
    raw = minari.load_dataset("test/ip/pert-v0")
    for ep in raw.iterate_episodes():  # Minari keeps T+1 infos, the reset info first
        np.testing.assert_array_equal(ep.infos["params"]["pole_mass"], np.full(len(ep.rewards) + 1, 5.0))
    with_params = load_dataset("test/ip/pert-v0", info_keys=("params",))
    np.testing.assert_array_equal(with_params.extras["info/params/pole_mass"], np.full(len(ds), 5.0))
    # The stored spec recovers the nominal env for evaluation.
    assert raw.recover_environment().spec.id == "InvertedPendulum-v5"
    assert ds.terminals[-1] and ds.terminals.sum() == 2  # both episodes fell over


def test_policy_sources(tmp_path, counting_env):
    obs_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    agent = rlrobust.make_agent("riql", obs_space, act_space, net_arch=[8])
    obs = np.array([1.0, 2.0], np.float32)
    expected = agent.act(obs[None], deterministic=True)[0]
    np.testing.assert_array_equal(resolve_policy(agent)(obs), expected)

    from rlrobust.core.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "ckpt", agent, step=1)
    np.testing.assert_allclose(resolve_policy(path)(obs), expected, atol=1e-6)

    from stable_baselines3 import TD3

    model = TD3("MlpPolicy", counting_env(), policy_kwargs={"net_arch": [8]}, seed=0)
    model.save(tmp_path / "td3.zip")
    np.testing.assert_allclose(
        resolve_policy(tmp_path / "td3.zip")(obs), model.predict(obs, deterministic=True)[0]
    )
    ds = record_dataset(tmp_path / "td3.zip", counting_env(), dataset_id="test/count/sb3-v0", episodes=1)
    assert len(ds) == 4

    with pytest.raises(ConfigError, match="cannot record from policy 3"):
        resolve_policy(3)
    with pytest.raises(DatasetError, match="already exists"):
        record_dataset(tmp_path / "td3.zip", counting_env(), dataset_id="test/count/sb3-v0", episodes=1)


def test_write_transitions_splits_a_replay_buffer_back_into_episodes():
    """Flat transitions in collection order (a replay buffer): an episode ends at a termination or
    where the next row does not continue it (a truncation)."""
    import gymnasium as gym

    from rlrobust.data import write_transitions

    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(6, 3)).astype(np.float32)
    nxt = np.roll(obs, -1, axis=0).copy()  # rows 0-1 continue, 2 terminates, 3-4 continue, 5 last
    nxt[2] = 9.0
    nxt[5] = 7.0
    dones = np.array([0, 0, 1, 0, 0, 0], np.float32)
    acts = rng.uniform(-2, 2, size=(6, 1)).astype(np.float32)
    data = write_transitions(
        {
            "observations": obs,
            "actions": acts,
            "rewards": np.arange(6, dtype=np.float32),
            "next_observations": nxt,
            "dones": dones,
            "discounts": np.full(6, 0.99),
        },
        env,
        dataset_id="test/pendulum/replay-v0",
    )
    np.testing.assert_array_equal(data.observations, obs)
    np.testing.assert_array_equal(data.next_observations, nxt)
    np.testing.assert_array_equal(data.terminals, dones.astype(bool))
    np.testing.assert_array_equal(data.timeouts, [False, False, False, False, False, True])
    np.testing.assert_allclose(data.episode_returns(), [0 + 1 + 2, 3 + 4 + 5])
