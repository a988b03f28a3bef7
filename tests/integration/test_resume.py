"""Checkpoints and resume (atomic writes, rotation, exact resume, manifests) and the NaN stop, on real CartPole runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlrobust
from rlrobust.core import checkpoint as ckpt
from rlrobust.core.errors import CheckpointError, NonFiniteError
from rlrobust.core.logging import read_metrics
from rlrobust.core.trainer import Trainer, TrainerSettings

SMALL_IQN = {"net_arch": [32, 32], "learning_starts": 100, "buffer_size": 5000, "batch_size": 32}


def make_iqn(seed=0):
    env = gym.make("CartPole-v1")
    return rlrobust.make_agent("iqn", env.observation_space, env.action_space, seed=seed, **SMALL_IQN)


def settings(**kw):
    base = dict(total_steps=600, progress=False, final_eval_episodes=0, log_interval=100)
    base.update(kw)
    return TrainerSettings(**base)


def cartpole():
    return gym.make("CartPole-v1")


def test_e1_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    agent = make_iqn()
    first = ckpt.save_checkpoint(tmp_path, agent, step=1)

    def broken_save(obj, path, *a, **k):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, agent, step=2)
    monkeypatch.undo()
    assert ckpt.latest_checkpoint(tmp_path) == first
    assert ckpt.load_agent(tmp_path).name == "iqn"


def test_e2_rotation_keeps_the_newest_k(tmp_path):
    agent = make_iqn()
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, agent, step=step, keep=2)
    ckpt.save_checkpoint(tmp_path, agent, step=3, name="best")
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000000004", "step_000000005"]
    assert ckpt.latest_checkpoint(tmp_path).name == "step_000000005"
    assert (tmp_path / "best" / "manifest.json").exists()


def test_e6_manifest_and_format_version(tmp_path):
    agent = make_iqn()
    path = ckpt.save_checkpoint(tmp_path, agent, step=7)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["agent"] == "iqn" and manifest["step"] == 7
    assert (
        manifest["torch_version"] == torch.__version__
        and manifest["rlrobust_version"] == rlrobust.__version__
    )
    manifest["format_version"] = ckpt.FORMAT_VERSION + 1
    manifest["checksum"] = ckpt._manifest_digest(manifest)  # as a newer writer would record it
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="upgrade"):
        ckpt.load_agent(path)


def test_corrupted_state_file_is_a_checkpoint_error(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, make_iqn(), step=1)
    data = (path / "state.pt").read_bytes()
    (path / "state.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        ckpt.load_agent(path)


def test_e5_resume_must_without_checkpoint_names_the_run_dir(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path / "run")):
        Trainer(make_iqn(), cartpole, settings(resume="must"), tmp_path / "run").run()


def test_online_resume_ends_at_total_steps_without_duplicate_metrics(tmp_path):
    run = tmp_path / "run"
    first = Trainer(
        make_iqn(), cartpole, settings(total_steps=400, checkpoint_interval=200, final_eval_episodes=1), run
    ).run()
    assert first.metrics["steps"] == 400
    size_at_checkpoint = torch.load(
        ckpt.latest_checkpoint(run / "checkpoints") / "state.pt", weights_only=False
    )["trainer_state"]["replay"]["size"]
    assert size_at_checkpoint == 400
    resumed = Trainer(
        make_iqn(seed=5),
        cartpole,
        settings(total_steps=800, checkpoint_interval=200, final_eval_episodes=1),
        run,
    ).run()
    assert resumed.metrics["steps"] == 800
    steps = [row["step"] for row in read_metrics(run)]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    assert steps[-1] == 800
    assert "eval/return_mean" in read_metrics(run)[-1]  # the final evaluation joins the last row


def tiny_offline_dataset(n: int = 500) -> SimpleNamespace:
    """Random CartPole-shaped transitions (the offline trainer reads only the arrays)."""
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        observations=rng.normal(size=(n, 4)).astype(np.float32),
        actions=rng.integers(0, 2, n),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=rng.normal(size=(n, 4)).astype(np.float32),
        terminals=(rng.random(n) < 0.05),
        timeouts=np.zeros(n, bool),
    )


def test_e3_offline_resume_in_a_fresh_agent_is_bitwise_equal(tmp_path):
    dataset = tiny_offline_dataset()
    straight = Trainer(make_iqn(), cartpole, settings(total_steps=60), tmp_path / "a", dataset=dataset).run()
    Trainer(make_iqn(), cartpole, settings(total_steps=30), tmp_path / "b", dataset=dataset).run()
    resumed = Trainer(
        make_iqn(seed=11), cartpole, settings(total_steps=60), tmp_path / "b", dataset=dataset
    ).run()
    a, b = straight.agent.state_dict(), resumed.agent.state_dict()
    for net in a["networks"]:  # online AND target networks
        for key in a["networks"][net]:
            assert torch.equal(a["networks"][net][key], b["networks"][net][key]), (net, key)
    for k, v in a["optimizers"]["critic"]["state"].items():
        for name in v:
            assert torch.equal(
                torch.as_tensor(v[name]), torch.as_tensor(b["optimizers"]["critic"]["state"][k][name])
            )


def test_offline_resume_on_other_data_is_refused_before_any_update(tmp_path):
    """A rebuilt dataset under the same id, or another corrupted copy, must not continue a run
    trained on the first: the checkpoint's dataset fingerprint is compared before loading."""
    dataset = tiny_offline_dataset()
    Trainer(make_iqn(), cartpole, settings(total_steps=30), tmp_path / "run", dataset=dataset).run()
    other = SimpleNamespace(**vars(dataset))
    other.rewards = dataset.rewards.copy()
    other.rewards[7] += 1.0  # one reward differs
    with pytest.raises(CheckpointError, match="trained on other data") as info:
        Trainer(make_iqn(), cartpole, settings(total_steps=60), tmp_path / "run", dataset=other).run()
    assert ckpt.dataset_fingerprint(dataset) in str(info.value)
    assert ckpt.dataset_fingerprint(other) in str(info.value)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_000000030"]
    same = SimpleNamespace(**{k: v.copy() for k, v in vars(dataset).items()})  # equal arrays, new objects
    resumed = Trainer(make_iqn(), cartpole, settings(total_steps=60), tmp_path / "run", dataset=same).run()
    assert resumed.agent.num_updates == 60


def test_nan_stops_the_run_naming_term_and_step_and_keeps_a_loadable_checkpoint(tmp_path, monkeypatch):
    agent = make_iqn()
    original = agent.update

    def update(batch):
        if agent.num_updates == 250:
            batch.rewards[0] = float("nan")
        return original(batch)

    monkeypatch.setattr(agent, "update", update)
    with pytest.raises(NonFiniteError) as info:
        Trainer(agent, cartpole, settings(total_steps=1000, checkpoint_interval=200), tmp_path / "run").run()
    message = str(info.value)
    assert "loss/critic" in message and "step 350" in message and "step_000000200" in message
    assert ckpt.load_agent(tmp_path / "run").num_updates == 101  # one update per step from step 100 to 200


@pytest.mark.slow
def test_e4_sigkilled_run_resumes_and_ends_at_exactly_total_steps(tmp_path):
    run_dir = tmp_path / "run"
    code = (
        "import rlrobust, torch; torch.set_num_threads(1);"
        f"rlrobust.train('iqn', 'CartPole-v1', total_steps=3000, run_dir={str(run_dir)!r}, "
        f"agent_kwargs={SMALL_IQN!r}, checkpoint_interval=500, progress=False, final_eval_episodes=2)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ckpt.list_checkpoints(run_dir / "checkpoints"):
        time.sleep(0.2)
    assert ckpt.list_checkpoints(run_dir / "checkpoints"), "no checkpoint appeared"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = ckpt.read_manifest(run_dir)["step"]
    assert killed_at < 3000
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    final = json.loads((run_dir / "final_evaluation.json").read_text())
    assert final["steps"] == 3000
    steps = [row["step"] for row in read_metrics(run_dir)]
    assert len(steps) == len(set(steps)) and steps == sorted(steps)
    payload = torch.load(ckpt.latest_checkpoint(run_dir / "checkpoints") / "state.pt", weights_only=False)
    assert payload["trainer_state"]["replay"]["size"] == 3000


def test_e6_resume_with_other_hyperparameters_lists_the_differing_keys(tmp_path):
    Trainer(make_iqn(), cartpole, settings(total_steps=200), tmp_path / "run").run()
    env = gym.make("CartPole-v1")
    other = rlrobust.make_agent(
        "iqn", env.observation_space, env.action_space, **{**SMALL_IQN, "batch_size": 16}
    )
    with pytest.raises(CheckpointError, match="batch_size: 32 there, 16 now"):
        Trainer(other, cartpole, settings(total_steps=400), tmp_path / "run").run()


def test_intervals_fire_when_vector_steps_cross_them(tmp_path):
    Trainer(
        make_iqn(),
        cartpole,
        settings(total_steps=900, num_envs=3, checkpoint_interval=200, keep_checkpoints=10),
        tmp_path / "run",
    ).run()
    # steps advance by 3: the checkpoints land on the first vector step past each multiple of 200
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == [
        "step_000000201",
        "step_000000402",
        "step_000000600",
        "step_000000801",
        "step_000000900",
    ]


def test_resume_never_moves_old_checkpoints_aside_and_a_finished_run_is_not_logged_twice(tmp_path):
    run = tmp_path / "run"
    Trainer(
        make_iqn(), cartpole, settings(total_steps=400, checkpoint_interval=200, final_eval_episodes=1), run
    ).run()
    Trainer(
        make_iqn(), cartpole, settings(total_steps=400, final_eval_episodes=1), run
    ).run()  # resumes at the end
    steps = [row["step"] for row in read_metrics(run)]
    assert len(steps) == len(set(steps))
    Trainer(make_iqn(), cartpole, settings(total_steps=200, resume="never"), run).run()
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["step_000000200"]
    assert list(tmp_path.glob("run/checkpoints.replaced-*/step_000000400"))
