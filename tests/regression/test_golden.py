"""Golden snapshots: SHA-256 of every agent's network and
optimizer tensors after 50 updates on fixed synthetic batches, kept in ``golden/<agent>.json``.

A change to a loss, a target, an initialisation or the order of random draws changes the hash,
so it cannot slip in unnoticed. When a change is intended, rewrite the snapshots with
``pytest tests/regression --update-golden`` and review the JSON diff in the commit.

Bitwise float results depend on the torch build and the CPU's vector instructions, so the exact
hash is compared only on the platform the snapshot was written on (torch and numpy versions,
machine, CPU capability and a digest of the CPU's feature flags, all recorded in the file: two
AVX512 machines with other flags or another numpy gave bitwise-different results). Elsewhere the per-tensor sums and norms must agree to a
relative 1e-4: that still catches real changes, which move them far more.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import build_agent, flat_tensors, run_updates

import rlrobust

GOLDEN = Path(__file__).parent / "golden"
UPDATES = 50
RTOL = 1e-4


def cpu_flags_digest() -> str:
    """Short digest of the CPU's feature flags (Linux ``/proc/cpuinfo``; "unknown" elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1] for line in lines if line.startswith("flags")), "")
    return hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:12]


def platform_fingerprint() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": cpu_flags_digest(),
    }


def snapshot(name: str) -> dict:
    """Hash and per-tensor checksums of the agent's ``networks`` state after ``UPDATES`` updates."""
    agent = build_agent(name, seed=0)
    run_updates(agent, name, UPDATES)
    tensors = flat_tensors(agent.state_dict()["networks"])
    digest, checksums = hashlib.sha256(), {}
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes())
        x = t.double()
        checksums[key] = {"shape": list(t.shape), "sum": x.sum().item(), "norm": x.norm().item()}
    return {
        "agent": name,
        "updates": UPDATES,
        "platform": platform_fingerprint(),
        "sha256": digest.hexdigest(),
        "tensors": checksums,
    }


def checksum_differences(now: dict, golden: dict) -> list[str]:
    problems = []
    if now.keys() != golden.keys():
        problems.append(
            f"tensors added {sorted(now.keys() - golden.keys())}, "
            f"removed {sorted(golden.keys() - now.keys())}"
        )
    for key in sorted(now.keys() & golden.keys()):
        a, b = now[key], golden[key]
        if a["shape"] != b["shape"]:
            problems.append(f"{key}: shape {a['shape']} != golden {b['shape']}")
            continue
        scale = max(abs(b["norm"]), 1e-8)
        for stat in ("sum", "norm"):
            if abs(a[stat] - b[stat]) > RTOL * scale:
                problems.append(f"{key}: {stat} {a[stat]:.8g} != golden {b[stat]:.8g}")
    return problems


@pytest.mark.parametrize("name", rlrobust.list_agents())
def test_d3_golden_snapshot(name, request):
    path = GOLDEN / f"{name}.json"
    now = snapshot(name)
    if request.config.getoption("--update-golden"):
        path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        return
    if not path.exists():
        pytest.fail(f"no golden snapshot {path}; write it with `pytest tests/regression --update-golden`")
    golden = json.loads(path.read_text())
    if now["sha256"] == golden["sha256"]:
        return
    problems = checksum_differences(now["tensors"], golden["tensors"])
    same_platform = now["platform"] == golden["platform"]
    assert not problems and not same_platform, (
        f"{name}: parameters after {UPDATES} updates differ from {path.name} "
        f"({'same' if same_platform else 'other'} platform: {golden['platform']}). "
        "If the change is intended, rerun with --update-golden and review the diff.\n"
        + "\n".join(problems[:20] or ["bitwise difference only (checksums agree to 1e-4)"])
    )
