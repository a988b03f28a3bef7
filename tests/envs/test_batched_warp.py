"""MuJoCo Warp backend against the CPU path, on Warp's CPU device (the ``warp`` tier:
``bash scripts/test.sh --warp``; the first run compiles Warp's kernels, minutes, then cached).

Small on purpose: at most 4 worlds and 100 control steps per test.

Tolerance: Warp integrates in float32 (eps 1.2e-7) where MuJoCo uses float64. Contacts amplify
the rounding: within an 8-step episode HalfCheetah's states drift apart by up to 3.4e-5 of
their own scale (joint velocities reach 15) and its rewards by up to 6e-5 relative, while
Hopper, Walker2d and InvertedPendulum stay below 1e-5. So each world's observation must agree
within 1e-4 * (1 + its largest magnitude), and rewards within 1e-4 * (1 + |reward|) — at least
1.6x above what is seen, and 100x below the 1e-2 errors of a world that uses another world's
model (an unbatched derived field).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlrobust
from rlrobust.core.checkpoint import save_checkpoint
from rlrobust.envs import make_env

pytest.importorskip("mujoco_warp")
pytestmark = pytest.mark.warp

from rlrobust.envs.batched.warp_env import WarpVectorEnv  # noqa: E402
from rlrobust.interop.policies import LinearPolicy  # noqa: E402

TOL = {"rtol": 1e-4, "atol": 1e-4}  # for single states and returns


def assert_close(actual: np.ndarray, desired: np.ndarray, what: str) -> None:
    """Per world (row of ``(W, d)`` arrays): ``|actual - desired|_inf <= 1e-4 * (1 + |desired|_inf)``."""
    desired = np.asarray(desired, dtype=np.float64)
    error = np.abs(actual - desired).max(axis=1)
    bound = 1e-4 * (1.0 + np.abs(desired).max(axis=1))
    assert (error <= bound).all(), f"{what}: errors {error} above {bound}"


# Per task: one setting per world; together they touch every kind of parameter.
WORLDS = {
    "Hopper-v5": [
        {"friction": 0.4, "torso_mass": 1.5},
        {"thigh_mass": 2.0, "gravity": 7.0},
        {"actuator_strength": 1.3, "joint_damping": 2.0},
        {},
    ],
    "Walker2d-v5": [
        {"friction": 2.0, "torso_mass": 4.0},
        {"thigh_left_mass": 1.0, "actuator_strength": 0.7},
        {},
    ],
    "HalfCheetah-v5": [{"friction": 0.3, "torso_mass": 3.0}, {"bthigh_mass": 0.5, "joint_damping": 0.5}, {}],
    "InvertedPendulum-v5": [{"pole_mass": 12.0}, {"cart_mass": 5.0, "gravity": 12.0}, {}],
}


def cpu_reference(env_id: str, worlds: list[dict], **kwargs) -> gym.vector.SyncVectorEnv:
    """The CPU path: one ParameterPerturbation-wrapped Gymnasium env per world, same-step autoreset."""
    fns = [lambda v=v: make_env(env_id, {"kind": "static", "values": v}, **kwargs) for v in worlds]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


@pytest.mark.parametrize("env_id", sorted(WORLDS))
def test_every_world_steps_like_the_cpu_wrapper_with_its_parameters(env_id):
    """Obs, rewards, terminations, truncations and same-step autoresets (final_obs included)
    match a SyncVectorEnv of CPU-wrapped envs, step by step, for 24 steps with an episode cap
    of 8 so that every world resets twice and its reset noise continues its own stream."""
    worlds = WORLDS[env_id]
    seeds = [11, 12, 13, 14][: len(worlds)]
    env = WarpVectorEnv(env_id, len(worlds), params=worlds, max_episode_steps=8)
    ref = cpu_reference(env_id, worlds, max_episode_steps=8)
    obs, _ = env.reset(seed=seeds)
    ref_obs, _ = ref.reset(seed=seeds)
    assert_close(obs.numpy(), ref_obs, "reset")
    ref.action_space.seed(0)
    resets = 0
    for t in range(24):
        action = ref.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(torch.as_tensor(action))
        ref_obs, ref_reward, ref_term, ref_trunc, ref_info = ref.step(action)
        np.testing.assert_array_equal(terminated.numpy(), ref_term, err_msg=f"step {t}")
        np.testing.assert_array_equal(truncated.numpy(), ref_trunc, err_msg=f"step {t}")
        assert_close(obs.numpy(), ref_obs, f"obs at step {t}")
        assert_close(reward.numpy()[:, None], ref_reward[:, None], f"reward at step {t}")
        if "_final_obs" in ref_info:
            done = ref_info["_final_obs"]
            np.testing.assert_array_equal(info["_final_obs"].numpy(), done)
            assert_close(
                info["final_obs"].numpy()[done], np.stack(ref_info["final_obs"][done]), f"final obs {t}"
            )
            resets += int(done.sum())
    assert resets >= 2 * len(worlds)
    assert obs.dtype == torch.float32 and env.observation_space.shape == (len(worlds), env.task.obs_dim)
    env.close()


def test_every_world_has_its_own_copy_of_each_field_its_parameters_change():
    """Each model field whose CPU value differs between worlds — derived ones such as
    body_subtreemass, body_invweight0, dof_invweight0 and actuator_acc0 included — has one row
    per world in the Warp model, equal to that world's CPU model. Fails if any is left shared."""
    worlds = WORLDS["Hopper-v5"]
    env = WarpVectorEnv("Hopper-v5", len(worlds), params=worlds)
    cpu = [make_env("Hopper-v5", {"kind": "static", "values": v}).unwrapped.model for v in worlds]
    model = env._model  # the batched mujoco_warp.Model
    varying = []
    for f in dataclasses.fields(model):
        if f.name == "opt" or not hasattr(cpu[0], f.name):
            continue
        values = np.stack([np.asarray(getattr(m, f.name), dtype=np.float64) for m in cpu])
        if values.size == 0 or all(np.array_equal(values[0], v) for v in values[1:]):
            continue
        varying.append(f.name)
        warp_values = getattr(model, f.name).numpy()
        assert warp_values.shape[0] == len(worlds), (
            f"{f.name} is shared by all worlds (shape {warp_values.shape})"
        )
        np.testing.assert_allclose(
            warp_values.reshape(values.shape), values, rtol=1e-6, atol=1e-7, err_msg=f.name
        )
    assert {
        "body_subtreemass",
        "body_invweight0",
        "dof_invweight0",
        "actuator_acc0",
        "body_mass",
        "body_inertia",
        "geom_friction",
        "actuator_gainprm",
        "dof_damping",
    } <= set(varying)
    gravity = model.opt.gravity.numpy()
    assert gravity.shape == (len(worlds), 3)
    np.testing.assert_allclose(gravity, np.stack([m.opt.gravity for m in cpu]), rtol=1e-6)
    env.close()


def test_resetting_one_world_leaves_the_others_untouched():
    worlds = WORLDS["InvertedPendulum-v5"]
    env = WarpVectorEnv("InvertedPendulum-v5", len(worlds), params=worlds)
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.full((len(worlds), 1), 0.5, dtype=np.float32))
    data = env._data
    arrays = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    before = {
        k: a.numpy().copy()
        for k, a in arrays.items()
        if hasattr(a, "shape") and a.shape[:1] == (len(worlds),)
    }
    first = env.reset_worlds([1])
    after = {k: arrays[k].numpy() for k in before}
    for k in before:
        np.testing.assert_array_equal(after[k][[0, 2]], before[k][[0, 2]], err_msg=k)
    assert not np.array_equal(after["qpos"][1], before["qpos"][1]) and after["time"][1] == 0.0
    ref = make_env("InvertedPendulum-v5", {"kind": "static", "values": worlds[1]})
    ref.reset(seed=1)  # world 1 was seeded 0 + 1; its next reset continues that stream
    np.testing.assert_allclose(first.numpy()[0], ref.reset()[0], **TOL)
    env.close()


def test_evaluate_with_the_warp_backend_matches_the_cpu_backend():
    """A 2x2 hopper-2d grid x 1 episode (4 worlds) with a fixed linear policy and 25-step episodes."""
    rng = np.random.default_rng(3)
    policy = LinearPolicy(rng.normal(scale=0.3, size=(3, 11)), np.zeros(3))
    kwargs = {"episodes": 1, "points_per_dim": 2, "env_kwargs": {"max_episode_steps": 25}, "seed": 5}
    cpu = rlrobust.evaluate(policy, "hopper-2d", workers=1, **kwargs)
    warp = rlrobust.evaluate(policy, "hopper-2d", backend="warp", **kwargs)
    assert warp.points == cpu.points and warp.settings["backend"] == "warp"
    np.testing.assert_array_equal(warp.lengths, cpu.lengths)
    np.testing.assert_allclose(warp.returns, cpu.returns, rtol=1e-4)
    assert warp.worst == pytest.approx(cpu.worst, rel=1e-4) and str(warp)


def test_evaluate_script_runs_an_agent_checkpoint_on_the_warp_backend(tmp_path):
    """scripts/evaluate.py backend=warp with a (untrained) DSAC checkpoint: the agent acts on the
    whole (W, obs_dim) batch, and the reports hold the CPU backend's returns."""
    env = gym.make("Hopper-v5")
    agent = rlrobust.make_agent("dsac", env.observation_space, env.action_space, seed=0, net_arch=[16])
    path = save_checkpoint(tmp_path / "checkpoints", agent, step=0)
    out = tmp_path / "eval"
    script = Path(rlrobust.__file__).resolve().parent.parent / "scripts" / "evaluate.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            f"checkpoint={path}",
            "suite=hopper-2d",
            "points_per_dim=2",
            "episodes=1",
            "max_episode_steps=10",
            "backend=warp",
            "tensorboard=false",
            f"out_dir={out}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "result.json").read_text())
    cpu = rlrobust.evaluate(
        path, "hopper-2d", episodes=1, points_per_dim=2, workers=1, env_kwargs={"max_episode_steps": 10}
    )
    assert report["settings"]["backend"] == "warp"
    np.testing.assert_array_equal(report["lengths"], cpu.lengths)
    np.testing.assert_allclose(report["returns"], cpu.returns, **TOL)


def test_domain_randomization_redraws_each_world_like_the_cpu_wrapper():
    """A 'random' perturbation: every world draws new parameters at each of its resets from its
    own stream, the very values a CPU ParameterPerturbation seeded alike draws, and steps alike."""
    from rlrobust.envs.batched.warp_env import from_perturbation

    pert = {"kind": "random", "suite": "invertedpendulum-2d"}
    env = from_perturbation("InvertedPendulum-v5", 3, pert, max_episode_steps=4)
    ref = gym.vector.SyncVectorEnv(
        [lambda: make_env("InvertedPendulum-v5", pert, max_episode_steps=4)] * 3,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs, _ = env.reset(seed=21)
    ref_obs, ref_info = ref.reset(seed=21)

    def ref_params(info):  # SyncVectorEnv stacks the dict infos: {name: (W,) array, "_name": mask}
        return [
            {k: float(v[i]) for k, v in info["params"].items() if not k.startswith("_")} for i in range(3)
        ]

    drawn = [dict(p) for p in env.params]
    assert drawn == ref_params(ref_info) and len({p["pole_mass"] for p in drawn}) == 3
    for t in range(9):  # two autoresets per world
        action = np.full((3, 1), 0.2, dtype=np.float32)
        obs, reward, *_ = env.step(action)
        ref_obs, ref_reward, _, _, ref_info = ref.step(action)
        assert_close(obs.numpy(), ref_obs, f"obs at step {t}")
        assert env.params == ref_params(ref_info), f"step {t}"
    assert env.params != drawn
    env.close()


def test_dsac_trains_on_batched_worlds_with_the_perturbation_redrawn_per_world(tmp_path):
    """`env.backend=warp trainer.num_envs=4 perturbation=<random>` runs the trainer end to end."""
    from rlrobust.core.runner import compose_train_config, run_from_config

    cfg = compose_train_config(
        agent="dsac",
        env="invertedpendulum",
        perturbation={"kind": "random", "suite": "invertedpendulum-2d"},
        agent_kwargs={"learning_starts": 16, "batch_size": 8, "net_arch": [16]},
        trainer_options={
            "num_envs": 4,
            "final_eval_episodes": 1,
            "progress": False,
            "checkpoint_interval": 0,
            "log_interval": 16,
        },
        top_level={"total_steps": 48, "run_dir": str(tmp_path / "run")},
    )
    cfg.env.backend, cfg.env.max_episode_steps = "warp", 5
    result = run_from_config(cfg)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "train/episodes" in r][-1]
    assert last["train/episodes"] >= 8 and np.isfinite(last["train/loss/critic"]), last
