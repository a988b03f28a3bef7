"""One writer per run dir, verified checkpoints, and the resume checks around them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import gymnasium as gym
import pytest

import rlrobust
from rlrobust.core import checkpoint as ckpt
from rlrobust.core.errors import CheckpointError, ConfigError, RunDirLockedError
from rlrobust.core.logging import read_metrics
from rlrobust.core.runlock import LOCK_FILE, hold_run_dir
from rlrobust.core.trainer import Trainer, TrainerSettings

SMALL_IQN = {"net_arch": [16], "learning_starts": 50, "buffer_size": 2000, "batch_size": 16}


def make_iqn(seed=0):
    env = gym.make("CartPole-v1")
    return rlrobust.make_agent("iqn", env.observation_space, env.action_space, seed=seed, **SMALL_IQN)


def cartpole():
    return gym.make("CartPole-v1")


def settings(**kw):
    base = dict(
        total_steps=300,
        progress=False,
        final_eval_episodes=0,
        log_interval=100,
        checkpoint_interval=100,
        keep_checkpoints=5,
    )
    base.update(kw)
    return TrainerSettings(**base)


# ------------------------------------------------------------------------------ one writer


def test_a_second_run_on_a_live_run_dir_is_refused_naming_the_holder_and_a_dead_ones_lock_is_taken_over(
    tmp_path, capsys
):
    run = tmp_path / "run"
    code = (
        f"import rlrobust; rlrobust.train('iqn', 'CartPole-v1', total_steps=10**6, run_dir={str(run)!r}, "
        f"agent_kwargs={SMALL_IQN!r}, progress=False)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.1)
        assert (run / "metrics.jsonl").exists(), "the first run did not start"
        rows_before = len(read_metrics(run))
        with pytest.raises(RunDirLockedError) as info:
            rlrobust.train(
                "iqn", "CartPole-v1", total_steps=200, run_dir=run, agent_kwargs=SMALL_IQN, progress=False
            )
        message = str(info.value)
        assert f"PID {holder.pid}" in message and socket.gethostname() in message and "started 20" in message
        assert len(read_metrics(run)) >= rows_before  # the refused run wrote nothing, truncated nothing
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    capsys.readouterr()
    with hold_run_dir(run):  # the dead run's lock file is still there, its flock is gone
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    out = capsys.readouterr().out
    assert "taking over the lock" in out and f"PID {holder.pid}" in out
    assert (run / LOCK_FILE).read_text() == ""  # a clean end leaves no record behind


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with hold_run_dir(tmp_path), hold_run_dir(tmp_path):
        pass
    with hold_run_dir(tmp_path):
        pass


# ------------------------------------------------------------------------------ verified checkpoints


def flip_byte(path, where=0.5):
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["state.pt", "manifest.json"])
@pytest.mark.parametrize("where", [0.02, 0.5, 0.98])
def test_a_flipped_byte_in_any_checkpoint_file_is_a_checkpoint_error_naming_it(tmp_path, name, where):
    path = ckpt.save_checkpoint(tmp_path, make_iqn(), step=1)
    flip_byte(path / name, where)
    with pytest.raises(CheckpointError, match=f"damaged.*{name}"):
        ckpt.load_agent(path)


def test_resume_auto_falls_back_to_the_newest_intact_checkpoint_naming_both(tmp_path):
    run = tmp_path / "run"
    Trainer(make_iqn(), cartpole, settings(), run).run()
    names = [p.name for p in ckpt.list_checkpoints(run / "checkpoints")]
    assert names == ["step_000000100", "step_000000200", "step_000000300"]
    flip_byte(run / "checkpoints" / "step_000000300" / "state.pt")
    flip_byte(run / "checkpoints" / "step_000000200" / "manifest.json")
    with pytest.warns(UserWarning) as caught:
        result = Trainer(make_iqn(), cartpole, settings(total_steps=400), run).run()
    messages = [str(w.message) for w in caught if "damaged" in str(w.message)]
    assert len(messages) == 2
    assert "step_000000300/state.pt" in messages[0] and "step_000000100" in messages[0]
    assert "step_000000200/manifest.json" in messages[1]
    assert result.metrics["steps"] == 400
    assert (run / "checkpoints" / "damaged-step_000000300").is_dir()  # kept aside, out of rotation
    steps = [row["step"] for row in read_metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] == 400


def test_only_damaged_checkpoints_refuse_to_resume(tmp_path):
    run = tmp_path / "run"
    Trainer(make_iqn(), cartpole, settings(total_steps=100), run).run()
    flip_byte(run / "checkpoints" / "step_000000100" / "state.pt")
    with pytest.warns(UserWarning, match="damaged"), pytest.raises(CheckpointError, match="only damaged"):
        Trainer(make_iqn(), cartpole, settings(total_steps=200), run).run()


def test_total_steps_below_the_checkpoint_step_is_refused_with_both_numbers(tmp_path):
    run = tmp_path / "run"
    Trainer(make_iqn(), cartpole, settings(total_steps=300), run).run()
    with pytest.raises(ConfigError, match=r"total_steps=200 is below step 300"):
        Trainer(make_iqn(), cartpole, settings(total_steps=200), run).run()
