"""Requeue on a cluster: a sweep through hydra-submitit-launcher's local executor (the SLURM
launcher's code path on one machine), killed mid-run and started again with the same run dirs,
resumes every job from its checkpoint and ends at exactly ``total_steps``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rlrobust
from rlrobust.core import checkpoint as ckpt
from rlrobust.core.logging import read_metrics

REPO = Path(rlrobust.__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_killed_submitit_sweep_resumes_each_job_from_its_checkpoint(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    command = [
        sys.executable,
        "scripts/train.py",
        "-m",
        "hydra/launcher=submitit_local",
        "agent=iqn",
        "env=cartpole",
        "seed=0,1",
        "total_steps=3000",
        "trainer.checkpoint_interval=500",
        "trainer.progress=false",
        "trainer.final_eval_episodes=1",
        "agent.net_arch=[32]",
        "agent.learning_starts=100",
        f"run_dir={tmp_path}/job" + "${hydra:job.num}",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while time.time() < deadline and not ckpt.list_checkpoints(tmp_path / "job0" / "checkpoints"):
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # the whole sweep: launcher and job processes
    sweep.wait()
    killed_at = ckpt.read_manifest(tmp_path / "job0")["step"]
    assert 500 <= killed_at < 3000

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").rglob("*_log.*"))
    assert f"at step {killed_at}; episodes continue" in logs
    assert "taking over the lock" in logs
    for job in ("job0", "job1"):
        final = json.loads((tmp_path / job / "final_evaluation.json").read_text())
        assert final["steps"] == 3000
        steps = [row["step"] for row in read_metrics(tmp_path / job)]
        assert steps == sorted(set(steps)) and steps[-1] == 3000
