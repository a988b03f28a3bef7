"""Atomic checkpoints with a manifest, rotation, and loading agents back.

Layout of a run directory::

    run_dir/checkpoints/step_000010000/{state.pt, manifest.json}
    run_dir/checkpoints/best/...          (best evaluation so far, when evaluations run)

A checkpoint is written into a temporary sibling folder and renamed into place only when both
files are complete, so a crash while writing never leaves a half checkpoint that could be taken
for the latest one (Dopamine's sentinel idea, via an atomic ``os.replace``). The manifest records
the format version, library and torch versions, agent name and config, the step, and a SHA-256
of every other file of the checkpoint plus one of its own content. Loading verifies them, so a
damaged file is refused as a :class:`CheckpointError` naming it instead of being trusted;
:func:`latest_intact_checkpoint` skips damaged checkpoints for the newest intact one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlrobust.core.errors import CheckpointError

# 2: the manifest records checksums (format 1 checkpoints still load, unverified).
FORMAT_VERSION = 2
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
_PREFIX = "step_"


def _library_version() -> str:
    from rlrobust._version import __version__

    return __version__


def config_to_dict(config: Any) -> dict[str, Any]:
    """An agent config (dataclass or mapping) as a plain dict."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a config dict (16 hex digits of its sorted-key JSON's SHA-256)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: the transition arrays of an offline dataset, as ``ReplayBuffer.from_dataset`` reads them
DATASET_ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def dataset_fingerprint(dataset: Any) -> str:
    """16 hex digits of a SHA-256 over an offline dataset's transition arrays and ``extras``
    (name, dtype, shape and bytes of each), metadata excluded.

    Two datasets with the same id can hold different data (one rebuilt on another machine, a
    corrupted copy, another corruption seed); the offline trainer records this in its checkpoints
    so that a run is never resumed on other data than it started on.
    """
    digest = hashlib.sha256()
    arrays = [(name, getattr(dataset, name, None)) for name in DATASET_ARRAYS]
    extras = getattr(dataset, "extras", None) or {}
    arrays += [(f"extras/{key}", extras[key]) for key in sorted(extras)]
    for name, array in arrays:
        if array is None:
            continue
        array = np.asarray(array)
        if array.dtype == object:  # e.g. string infos: hash the values, not their pointers
            digest.update(f"{name}:object:{array.shape};{array.tolist()!r}".encode())
            continue
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))  # byte order is no change
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's content without its own ``checksum`` entry (canonical JSON)."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def save_checkpoint(
    directory: str | Path,
    agent: Any,
    *,
    step: int,
    trainer_state: dict[str, Any] | None = None,
    run_config: dict[str, Any] | None = None,
    keep: int | None = None,
    name: str | None = None,
) -> Path:
    """Write ``directory/step_<step>/`` atomically and keep only the newest ``keep`` step folders.

    Args:
        directory: the run's ``checkpoints`` folder.
        agent: any agent (``state_dict``, ``name``, ``config``, spaces).
        step: environment (or gradient, offline) step the checkpoint belongs to.
        trainer_state: replay buffer, collector and trainer counters for an exact resume.
        run_config: the resolved run configuration (stored in the manifest).
        keep: rotation: how many step checkpoints to keep (None keeps all).
        name: folder name instead of ``step_<step>`` (e.g. ``"best"``; never rotated).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / (name or f"{_PREFIX}{step:09d}")
    tmp = directory / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    agent_config = config_to_dict(agent.config)
    payload = {
        "agent_state": agent.state_dict(),
        "trainer_state": trainer_state or {},
        "observation_space": agent.observation_space,
        "action_space": agent.action_space,
    }
    torch.save(payload, tmp / STATE_FILE)
    manifest = {
        "format_version": FORMAT_VERSION,
        "rlrobust_version": _library_version(),
        "torch_version": torch.__version__,
        "agent": agent.name,
        "agent_config": agent_config,
        "config_hash": config_hash(agent_config),
        "step": int(step),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "run_config": run_config or {},
        # What the policy fits, readable without loading state.pt (evaluation checks it).
        "spaces": {"observation": str(agent.observation_space), "action": str(agent.action_space)},
        "files": {STATE_FILE: file_sha256(tmp / STATE_FILE)},
    }
    # Round-trip through JSON first so the digest covers exactly what a reader will parse.
    manifest = json.loads(json.dumps(manifest, default=str))
    manifest["checksum"] = _manifest_digest(manifest)
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    if final.exists():  # e.g. "best" being replaced: move the old one aside first
        old = directory / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    if keep is not None and name is None:
        for stale in list_checkpoints(directory)[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete step checkpoints in ``directory``, oldest first (temporary folders ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if p.name.startswith(_PREFIX) and (p / MANIFEST_FILE).is_file() and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint (not verified; see :func:`latest_intact_checkpoint`), or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def latest_intact_checkpoint(directory: str | Path) -> tuple[Path | None, list[tuple[Path, CheckpointError]]]:
    """The newest checkpoint whose files match their checksums, and the newer damaged ones skipped
    on the way (newest first, each with the error naming its damaged file)."""
    skipped: list[tuple[Path, CheckpointError]] = []
    for path in reversed(list_checkpoints(directory)):
        try:
            verify_checkpoint(path)
        except CheckpointError as exc:
            skipped.append((path, exc))
            continue
        return path, skipped
    return None, skipped


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder, its ``state.pt``, a ``checkpoints`` folder or a run dir."""
    path = Path(path)
    if path.is_file() and path.name == STATE_FILE:
        path = path.parent
    if (path / MANIFEST_FILE).is_file():
        return path
    for candidate in (path, path / "checkpoints"):
        latest = latest_checkpoint(candidate)
        if latest is not None:
            return latest
    raise CheckpointError(
        f"no complete checkpoint at {path}; expected a folder holding {MANIFEST_FILE} and {STATE_FILE}, "
        "a run directory, or its checkpoints/ folder"
    )


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a checkpoint; fails on newer formats and warns on version skew."""
    path = resolve_checkpoint(path)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"damaged or unreadable checkpoint manifest {path / MANIFEST_FILE}: {exc}"
        ) from exc
    if not isinstance(manifest, dict):
        raise CheckpointError(f"damaged checkpoint manifest {path / MANIFEST_FILE}: not a JSON object")
    version = manifest.get("format_version")
    # Checked before the version: a damaged version field must read as damage, not as "upgrade".
    if "checksum" in manifest or not (isinstance(version, int) and version < 2):
        if manifest.get("checksum") != _manifest_digest(manifest):
            raise CheckpointError(
                f"damaged checkpoint manifest {path / MANIFEST_FILE}: its content does not match its checksum"
            )
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version!r}, this rlrobust {_library_version()} reads "
            f"format <= {FORMAT_VERSION}; upgrade rlrobust (pip install -U rlrobust) to load it"
        )
    if manifest.get("rlrobust_version") != _library_version():
        warnings.warn(
            f"checkpoint {path} was written by rlrobust {manifest.get('rlrobust_version')}, "
            f"loading with {_library_version()}",
            stacklevel=2,
        )
    return manifest


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """The manifest of a checkpoint after checking every recorded file's SHA-256.

    Raises:
        CheckpointError: naming the damaged (or missing) file.
    """
    path = resolve_checkpoint(path)
    manifest = read_manifest(path)
    for name, expected in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"damaged checkpoint {path}: {name} is missing")
        actual = file_sha256(file)
        if actual != expected:
            raise CheckpointError(
                f"damaged checkpoint file {file}: SHA-256 {actual[:12]}... differs from the {expected[:12]}... "
                "recorded when it was written; use an older checkpoint of the run"
            )
    return manifest


def load_payload(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(manifest, payload)`` of a verified checkpoint; payload holds agent and trainer state."""
    path = resolve_checkpoint(path)
    manifest = verify_checkpoint(path)
    try:
        payload = torch.load(path / STATE_FILE, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise CheckpointError(f"corrupted checkpoint file {path / STATE_FILE}: {exc}") from exc
    return manifest, payload


def load_agent(
    path: str | Path, device: str | torch.device = "cpu", *, expected_agent: str | None = None
) -> Any:
    """Rebuild the agent saved at ``path`` (checkpoint folder, ``state.pt`` or run dir).

    Raises:
        CheckpointError: missing/incomplete/corrupted checkpoint, a newer format, or an agent
            other than ``expected_agent`` (the message names both).
    """
    from rlrobust.core.registry import make_agent

    manifest, payload = load_payload(path, "cpu")  # RNG states must stay on the CPU
    name = manifest["agent"]
    if expected_agent is not None and expected_agent != name:
        raise CheckpointError(f"checkpoint {path} holds agent {name!r}, expected agent {expected_agent!r}")
    agent = make_agent(
        name,
        payload["observation_space"],
        payload["action_space"],
        device=str(device),
        **manifest["agent_config"],
    )
    agent.load_state_dict(payload["agent_state"])
    return agent
