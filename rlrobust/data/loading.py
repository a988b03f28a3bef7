"""Load offline datasets: a local Minari id, a Minari dataset folder, or a D4RL-era HDF5 file.

Everything is read into memory, converted to flat transitions and validated before it is
returned (:func:`rlrobust.data.dataset.validate`), so a bad file never half-fills a buffer.
Minari is never asked to download: a missing dataset raises :class:`DatasetError` with the
search path and the exact ``minari download`` command.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np

from rlrobust.data.dataset import Dataset, DatasetError, check_spaces, validate
from rlrobust.data.scores import D4RL_REF_SCORES

# Every error h5py/Minari raise on truncated, garbage or inconsistent files.
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, AssertionError, IndexError, RuntimeError)


def minari_root() -> Path:
    """Where Minari looks for local datasets (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def load_dataset(
    source: str | os.PathLike[str],
    *,
    allow_nonfinite: bool = False,
    observation_space: gym.Space[Any] | None = None,
    action_space: gym.Space[Any] | None = None,
    info_keys: tuple[str, ...] = (),
) -> Dataset:
    """Load an offline dataset as flat, validated transitions.

    Args:
        source: a local Minari dataset id (``"mujoco/hopper/medium-v0"``, looked up under
            ``$MINARI_DATASETS_PATH``), a Minari dataset folder (``<root>/<id>`` or its ``data``
            sub-folder), or a D4RL-era HDF5 file.
        allow_nonfinite: accept NaN/inf in observations, actions or rewards.
        observation_space: if given with ``action_space``, :func:`check_spaces` is run.
        action_space: see ``observation_space``.
        info_keys: Minari step-info keys to load as ``extras["info/<key>"]`` (the info returned
            by the step that produced each transition); nested dicts are flattened with ``/``.

    Raises:
        DatasetError: not available locally, unreadable/truncated file, missing keys, non-finite
            values, or spaces that do not fit.
    """
    path = Path(os.fspath(source)).expanduser()
    if path.is_file():
        dataset = _load_hdf5_file(path)
    elif path.is_dir():
        dataset = _load_minari_folder(path, str(source), info_keys)
    else:
        text = os.fspath(source)
        if text.endswith((".hdf5", ".h5")) or text.startswith((".", os.sep, "~")):
            raise DatasetError(f"dataset file {path} does not exist")
        local = minari_root() / text
        if not (local / "data").is_dir():
            raise DatasetError(
                f"Minari dataset {text!r} is not available locally: looked for {local / 'data'} "
                f"(search path MINARI_DATASETS_PATH={minari_root()}). Download it with `minari download {text}` "
                "(needs network), record one with `python scripts/make_dataset.py`, or pass a dataset "
                "folder / D4RL HDF5 file path"
            )
        dataset = _load_minari_folder(local, text, info_keys)
    label = dataset.metadata.get("dataset_id") or str(path)
    dataset = validate(dataset, source=label, allow_nonfinite=allow_nonfinite)
    if observation_space is not None and action_space is not None:
        check_spaces(dataset, observation_space, action_space)
    return dataset


# ----------------------------------------------------------------------------- Minari
def _load_minari_folder(folder: Path, label: str, info_keys: tuple[str, ...]) -> Dataset:
    import minari

    data_path = folder / "data" if (folder / "data").is_dir() else folder
    if not (data_path / "metadata.json").is_file():
        raise DatasetError(
            f"{folder} is not a Minari dataset folder: no metadata.json in {data_path} "
            "(expected <root>/<dataset_id>/data/metadata.json)"
        )
    try:
        ds = minari.MinariDataset(data_path)
        meta = ds.storage.metadata
        obs_space, act_space = ds.observation_space, ds.action_space
        if not isinstance(obs_space, gym.spaces.Box) or not isinstance(
            act_space, (gym.spaces.Box, gym.spaces.Discrete)
        ):
            raise DatasetError(
                f"{label}: only Box observations and Box/Discrete actions are supported, got observation "
                f"space {obs_space} and action space {act_space}"
            )
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "rew", "next", "term", "tout")}
        infos: dict[str, list[np.ndarray]] = {}
        for ep in ds.iterate_episodes():
            _append_episode(ep, parts, infos, info_keys, label)
    except DatasetError:
        raise
    except _READ_ERRORS as exc:
        raise DatasetError(
            f"cannot read Minari dataset {label} at {data_path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not parts["rew"]:
        raise DatasetError(f"Minari dataset {label} at {data_path} holds no episodes")
    metadata: dict[str, Any] = {
        "source": "minari",
        "dataset_id": meta.get("dataset_id", label),
        "path": str(data_path),
        "env_spec": meta.get("env_spec"),
        "eval_env_spec": meta.get("eval_env_spec"),
        "observation_space": obs_space,
        "action_space": act_space,
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
        "total_episodes": len(parts["rew"]),
        "algorithm_name": meta.get("algorithm_name"),
        "corruption": list(meta.get("rlrobust_corruption", [])),
    }
    if "rlrobust_perturbation" in meta:
        metadata["perturbation"] = meta["rlrobust_perturbation"]
    if "rlrobust_behaviour" in meta:  # the behaviour policy's returns/scores (benchmarks/bench_offline.py)
        metadata["behaviour"] = meta["rlrobust_behaviour"]
    return Dataset(
        observations=np.concatenate(parts["obs"]),
        actions=np.concatenate(parts["act"]),
        rewards=np.concatenate(parts["rew"]),
        next_observations=np.concatenate(parts["next"]),
        terminals=np.concatenate(parts["term"]),
        timeouts=np.concatenate(parts["tout"]),
        metadata=metadata,
        extras={f"info/{k}": np.concatenate(v) for k, v in infos.items()},
    )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def _append_episode(
    ep: Any, parts: dict[str, list[Any]], infos: dict[str, list[Any]], info_keys: tuple[str, ...], label: str
) -> None:
    """Add one Minari episode (``T+1`` observations, ``T`` of everything else) as ``T`` transitions."""
    obs = np.asarray(ep.observations)
    rew = np.asarray(ep.rewards).reshape(-1)
    t = rew.shape[0]
    term = np.asarray(ep.terminations).reshape(-1).astype(bool)
    trunc = np.asarray(ep.truncations).reshape(-1).astype(bool)
    act = np.asarray(ep.actions)
    if obs.shape[0] != t + 1 or act.shape[0] != t or term.shape[0] != t or trunc.shape[0] != t:
        raise DatasetError(
            f"{label}: episode {ep.id} breaks Minari's layout (T+1 observations, T actions/rewards/"
            f"terminations/truncations): observations {obs.shape[0]}, actions {act.shape[0]}, rewards {t}, "
            f"terminations {term.shape[0]}, truncations {trunc.shape[0]}"
        )
    if t == 0:
        return
    parts["obs"].append(obs[:-1])
    parts["next"].append(obs[1:])
    parts["act"].append(act)
    parts["rew"].append(rew)
    parts["term"].append(term)
    # The last step ends the episode: a timeout unless it terminated (terminal wins over truncation).
    tout = trunc & ~term
    tout[-1] = not term[-1]
    parts["tout"].append(tout)
    if info_keys:
        flat = _flatten(ep.infos or {})
        for key in info_keys:
            matches = {k: v for k, v in flat.items() if k == key or k.startswith(key + "/")}
            if not matches:
                raise DatasetError(
                    f"{label}: episode {ep.id} has no step info {key!r}; info keys are {sorted(flat)}"
                )
            for k, v in matches.items():
                # infos hold T+1 entries (the reset info first): transition i comes with info i+1.
                infos.setdefault(k, []).append(v[1:] if v.shape[0] == t + 1 else v)


# ----------------------------------------------------------------------------- D4RL HDF5
_D4RL_REQUIRED = ("observations", "actions", "rewards", "terminals")


def _load_hdf5_file(path: Path) -> Dataset:
    try:
        with h5py.File(path, "r") as f:
            if "episode_0" in f:
                raise DatasetError(
                    f"{path} is a Minari data file; pass its dataset folder ({path.parent.parent}) instead"
                )
            missing = [k for k in _D4RL_REQUIRED if k not in f]
            if missing:
                raise DatasetError(
                    f"{path}: missing keys {missing} (found {sorted(f.keys())}); a D4RL file needs "
                    f"{list(_D4RL_REQUIRED)}, optionally 'timeouts' and 'next_observations'"
                )
            raw = {k: f[k][()] for k in (*_D4RL_REQUIRED, "timeouts", "next_observations") if k in f}
            file_meta = (
                {
                    k: (v[()].decode() if isinstance(v[()], bytes) else v[()])
                    for k, v in f["metadata"].items()
                    if isinstance(v, h5py.Dataset) and v.shape == ()
                }
                if isinstance(f.get("metadata"), h5py.Group)
                else {}
            )
    except DatasetError:
        raise
    except _READ_ERRORS as exc:
        raise DatasetError(
            f"cannot read HDF5 dataset {path} (truncated or not an HDF5 file?): {type(exc).__name__}: {exc}"
        ) from exc
    return _from_d4rl_arrays(raw, path, file_meta)


def _from_d4rl_arrays(raw: dict[str, np.ndarray], path: Path, file_meta: dict[str, Any]) -> Dataset:
    """Split D4RL's flat arrays into transitions that never cross an episode boundary."""
    squeeze = {k: (v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v) for k, v in raw.items()}
    n = squeeze["observations"].shape[0]
    lengths = {k: v.shape[0] for k, v in squeeze.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f"{path}: arrays have different lengths {lengths}")
    terminals = squeeze["terminals"].astype(bool)
    timeouts = squeeze.get("timeouts", np.zeros(n, dtype=bool)).astype(bool) & ~terminals
    obs = squeeze["observations"]
    if "next_observations" in squeeze:  # v2 files recorded the true successor of every step
        keep = np.ones(n, dtype=bool)
        next_obs = squeeze["next_observations"]
    else:
        # Shift inside episodes. A timeout step (or an unfinished last row) has no recorded
        # successor: drop it, as d4rl.qlearning_dataset does, and end the episode one step earlier.
        next_obs = np.concatenate([obs[1:], obs[-1:]])
        keep = ~timeouts
        keep[-1] = keep[-1] and bool(terminals[-1])
        # A terminal step's successor is the next episode's reset: store a masked placeholder.
        next_obs = np.where(terminals.reshape(-1, *([1] * (obs.ndim - 1))), obs, next_obs)
        dropped = np.flatnonzero(~keep)
        prev = dropped - 1
        prev = prev[prev >= 0]
        prev = prev[keep[prev] & ~terminals[prev]]
        timeouts = timeouts.copy()
        timeouts[prev] = True
    match = re.match(r"(halfcheetah|hopper|walker2d|ant)[-_]", path.name.lower())
    ref_min = file_meta.get("ref_min_score")
    ref_max = file_meta.get("ref_max_score")
    ref_source = "file" if ref_min is not None and ref_max is not None else None
    if ref_source is None and match:
        ref_min, ref_max = D4RL_REF_SCORES[match.group(1)]
        ref_source = f"built-in D4RL table ({match.group(1)}, matched from the file name)"
    metadata: dict[str, Any] = {
        "source": "hdf5",
        "path": str(path),
        "dataset_id": None,
        "env_spec": None,
        "observation_space": None,
        "action_space": None,
        "ref_min_score": None if ref_min is None else float(ref_min),
        "ref_max_score": None if ref_max is None else float(ref_max),
        "ref_score_source": ref_source,
        "file_metadata": file_meta,
        "corruption": [],
    }
    return Dataset(
        observations=obs[keep],
        actions=squeeze["actions"][keep],
        rewards=squeeze["rewards"][keep],
        next_observations=next_obs[keep],
        terminals=terminals[keep],
        timeouts=timeouts[keep],
        metadata=metadata,
    )
