"""Record a Minari dataset from a policy (an rlrobust checkpoint, an SB3 model or a callable).

Minari 0.5.4's ``DataCollector`` needs ``jax`` (``minari[create]``, ~380 MB) for one
``tree_map`` call, so we collect the episodes ourselves and write them with
``minari.create_dataset_from_buffers``: the same storage, metadata and on-disk format the
collector produces (``T+1`` observations per episode, the reset info first in ``infos``), so
``minari.load_dataset`` and :func:`rlrobust.data.load_dataset` read it like any Minari dataset.

Step infos: each kept info key is stored per step under its own name in the episode's ``infos``
(the reset info first). ``rlrobust.envs`` perturbation wrappers report the active physical
parameters as ``info["params"] = {name: value}`` (and ``info["forces"]``,
``info["adversarial_reward"]``); with ``info_keys=None`` every numeric entry with a fixed
structure is kept, so they land in the dataset as ``infos/params/<name>``, and
``load_dataset(..., info_keys=("params",))`` returns them as ``extras["info/params/<name>"]``,
aligned with the transitions. The perturbation setting itself is written to the dataset metadata
as ``rlrobust_perturbation`` (``Dataset.metadata["perturbation"]`` after loading).
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from rlrobust.core.errors import ConfigError
from rlrobust.data.dataset import Dataset, DatasetError

Policy = Callable[[np.ndarray], np.ndarray]


def load_sb3_model(path: str | os.PathLike[str], device: str = "cpu") -> Any:
    """Load a Stable-Baselines3 (or sb3-contrib) ``.zip`` without being told the algorithm.

    The algorithm is read from the module of the saved policy class
    (``stable_baselines3.sac.policies`` → ``stable_baselines3.SAC``).
    """
    import importlib

    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
        module = data["policy_class"]["__module__"]  # e.g. "sb3_contrib.tqc.policies"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path} is not a readable Stable-Baselines3 model zip: {exc}") from exc
    package, algo = module.split(".")[:2]
    pkg = importlib.import_module(package)
    for name in dir(pkg):
        cls = getattr(pkg, name)
        if isinstance(cls, type) and cls.__module__.startswith(f"{package}.{algo}.") and hasattr(cls, "load"):
            return cls.load(path, device=device)
    raise ConfigError(
        f"cannot find the algorithm of {path}: no class of module {package}.{algo} in {package}"
    )


def resolve_policy(policy: Any, *, deterministic: bool = True, device: str = "cpu") -> Policy:
    """A function ``obs (obs_shape) -> action`` from a checkpoint path, SB3 zip, agent, model or callable."""
    if isinstance(policy, (str, os.PathLike)):
        path = Path(policy)
        if path.suffix == ".zip":
            policy = load_sb3_model(path, device=device)
        else:
            from rlrobust.core.checkpoint import load_agent  # lazy: the trainer stack is heavy

            policy = load_agent(path, device=device)
    if hasattr(policy, "act") and hasattr(policy, "update"):  # an rlrobust agent
        agent = policy

        def agent_policy(obs: np.ndarray) -> np.ndarray:
            action: np.ndarray = agent.act(np.asarray(obs)[None], deterministic=deterministic)[0]
            return action

        return agent_policy
    if hasattr(policy, "predict"):  # a Stable-Baselines3 model
        model = policy

        def model_policy(obs: np.ndarray) -> np.ndarray:
            action: np.ndarray = model.predict(obs, deterministic=deterministic)[0]
            return action

        return model_policy
    if callable(policy):
        return cast(Policy, policy)
    raise ConfigError(
        f"cannot record from policy {policy!r}; give an rlrobust checkpoint path, an SB3 .zip, an "
        "agent, an SB3 model or a callable obs -> action"
    )


def _numeric(value: Any) -> bool:
    if isinstance(value, Mapping):
        return bool(value) and all(_numeric(v) for v in value.values())
    arr = np.asarray(value)
    return arr.dtype.kind in "biuf"


def _structure(value: Any) -> Any:
    """Nested keys and shapes of an info value (Minari needs the same structure at every step)."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _structure(v)) for k, v in value.items()))
    return np.shape(value)


def _stack(values: list[Any]) -> Any:
    """Stack a list of (nested dicts of) numbers into (nested dicts of) arrays."""
    if isinstance(values[0], Mapping):
        return {k: _stack([v[k] for v in values]) for k in values[0]}
    return np.stack([np.asarray(v) for v in values])


def _as_env(env: str | gym.Env, perturbation: Any) -> gym.Env:
    """``env`` itself, or the env of id ``env`` built by ``rlrobust.envs.make_env``."""
    if not isinstance(env, str):
        return env
    try:
        from rlrobust.envs import make_env

        made: gym.Env = make_env(env, perturbation=perturbation)
        return made
    except (ImportError, AttributeError):  # envs not installed yet: nominal env only
        if perturbation is not None:
            raise
        return gym.make(env)


def record_dataset(
    policy: Any,
    env: str | gym.Env,
    *,
    dataset_id: str,
    episodes: int,
    seed: int = 0,
    deterministic: bool = True,
    perturbation: Any = None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    info_keys: tuple[str, ...] | None = None,
    algorithm_name: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Roll out ``policy`` for ``episodes`` episodes and write a Minari dataset ``dataset_id``.

    Args:
        policy: see :func:`resolve_policy`.
        env: a gymnasium env or an id (built with ``rlrobust.envs.make_env(id, perturbation=...)``).
        dataset_id: Minari id, written under ``$MINARI_DATASETS_PATH``.
        episodes: number of episodes.
        seed: episode ``k`` resets with seed ``seed + k`` (the action space is seeded with ``seed``).
        deterministic: act deterministically (agents and SB3 models).
        perturbation: passed to ``make_env`` when ``env`` is an id; recorded in the metadata.
        ref_min_score: reference random return for normalized scores (stored as Minari does).
        ref_max_score: reference expert return; Minari stores references only when this is given
            (and then estimates a missing ``ref_min_score`` from 100 random-policy episodes).
        info_keys: step-info keys to store; ``None`` keeps every numeric entry whose structure is
            the same at every step (perturbation wrappers' ``params`` included).
        algorithm_name: stored in the metadata.
        description: stored in the metadata.
        overwrite: replace an existing local dataset of the same id.

    Returns:
        The recorded dataset, loaded back through :func:`rlrobust.data.load_dataset`.
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    from rlrobust.data.loading import load_dataset, minari_root

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if (minari_root() / dataset_id).exists():
        if not overwrite:
            raise DatasetError(
                f"Minari dataset {dataset_id!r} already exists in {minari_root()}; choose another id or "
                "pass overwrite=True (overwrite=true on the command line)"
            )
        minari.delete_dataset(dataset_id)
    env = _as_env(env, perturbation)
    act_fn = resolve_policy(policy, deterministic=deterministic)
    env.action_space.seed(seed)
    buffers = []
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        observations, actions, rewards, terms, truncs, step_infos = [obs], [], [], [], [], [info]
        done = False
        while not done:
            action = np.asarray(act_fn(obs), dtype=env.action_space.dtype).reshape(env.action_space.shape)
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            step_infos.append(info)
            done = terminated or truncated
        buffers.append(
            EpisodeBuffer(
                id=k,
                seed=seed + k,
                observations=np.stack(observations),
                actions=np.stack(actions),
                rewards=rewards,
                terminations=terms,
                truncations=truncs,
                infos=_select_infos(step_infos, info_keys),
            )
        )
    _write(
        dataset_id,
        buffers,
        env,
        perturbation=perturbation,
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        algorithm_name=algorithm_name or type(policy).__name__,
        description=description or "recorded with rlrobust.data.record_dataset",
    )
    return load_dataset(dataset_id)


def _write(
    dataset_id: str,
    buffers: list[Any],
    env: gym.Env,
    *,
    perturbation: Any,
    ref_min_score: float | None,
    ref_max_score: float | None,
    algorithm_name: str,
    description: str,
) -> None:
    """Write episode buffers as the Minari dataset ``dataset_id`` (references and perturbation in the metadata)."""
    import minari

    spec = env.unwrapped.spec
    # A spec lets Minari recover the (nominal) env; custom unregistered envs have none.
    env_kwargs = {"env": spec, "eval_env": spec} if spec is not None else {}
    with warnings.catch_warnings():  # Minari's reminders about authors, permalinks and missing specs
        warnings.filterwarnings(
            "ignore", message=r".*(is set to None|env_spec is None)", category=UserWarning
        )
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            observation_space=env.observation_space,
            action_space=env.action_space,
            algorithm_name=algorithm_name,
            description=description,
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
            **env_kwargs,
        )
    extra_meta: dict[str, Any] = {}
    if perturbation is not None:
        extra_meta["rlrobust_perturbation"] = _jsonable(perturbation)
    if spec is None and ref_min_score is not None and ref_max_score is not None:
        # Minari stores references only when it can build the env; keep the user's values anyway.
        extra_meta.update(ref_min_score=float(ref_min_score), ref_max_score=float(ref_max_score))
    if extra_meta:
        minari.load_dataset(dataset_id).storage.update_metadata(extra_meta)


def write_transitions(
    transitions: Mapping[str, np.ndarray],
    env: gym.Env,
    *,
    dataset_id: str,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    algorithm_name: str = "replay buffer",
    description: str = "transitions written with rlrobust.data.write_transitions",
    overwrite: bool = False,
) -> Dataset:
    """Write flat one-step transitions of one env, in collection order (e.g. a replay buffer's
    storage), as a Minari dataset, split back into episodes.

    An episode ends where ``dones`` is set (a termination) or where the next row does not start
    from this row's ``next_observations`` (a truncation; also the last row).

    Args:
        transitions: ``observations``, ``actions``, ``rewards``, ``next_observations``, ``dones``.
        env: the env the transitions come from (its spaces and spec go into the metadata).
    """
    from minari.data_collector import EpisodeBuffer

    from rlrobust.data.loading import load_dataset, minari_root

    missing = {"observations", "actions", "rewards", "next_observations", "dones"} - set(transitions)
    if missing:
        raise DatasetError(
            f"write_transitions needs {sorted(missing)} among the transitions; got {sorted(transitions)}"
        )
    obs, nxt = np.asarray(transitions["observations"]), np.asarray(transitions["next_observations"])
    dones = np.asarray(transitions["dones"]).reshape(-1) > 0.5
    n = len(obs)
    if n == 0:
        raise DatasetError("write_transitions got no transitions")
    if (minari_root() / dataset_id).exists():
        if not overwrite:
            raise DatasetError(
                f"Minari dataset {dataset_id!r} already exists in {minari_root()}; pass overwrite=True"
            )
        import minari

        minari.delete_dataset(dataset_id)
    continues = np.zeros(n, dtype=bool)
    continues[:-1] = ~dones[:-1] & np.all(nxt[:-1] == obs[1:], axis=tuple(range(1, obs.ndim)))
    ends = np.flatnonzero(~continues)
    actions = (
        np.asarray(transitions["actions"])
        .astype(env.action_space.dtype)
        .reshape(n, *(env.action_space.shape or ()))
    )
    rewards = np.asarray(transitions["rewards"], dtype=np.float64).reshape(-1)
    buffers, start = [], 0
    for k, end in enumerate(ends):
        rows = slice(start, end + 1)
        buffers.append(
            EpisodeBuffer(
                id=k,
                observations=np.concatenate([obs[rows], nxt[end : end + 1]]).astype(
                    env.observation_space.dtype
                ),
                actions=actions[rows],
                rewards=rewards[rows].tolist(),
                terminations=dones[rows].tolist(),
                truncations=[False] * (end - start) + [not dones[end]],
                infos={},
            )
        )
        start = end + 1
    _write(
        dataset_id,
        buffers,
        env,
        perturbation=None,
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        algorithm_name=algorithm_name,
        description=description,
    )
    return load_dataset(dataset_id)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "_content"):  # OmegaConf container
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _select_infos(step_infos: list[dict[str, Any]], info_keys: tuple[str, ...] | None) -> dict[str, Any]:
    """Per-key arrays of ``T+1`` step infos (reset first), as Minari stores them.

    With ``info_keys=None`` the keys are the numeric entries of the first step's info that keep
    the same structure at every step. When the reset info lacks a key or holds it in another
    structure (e.g. an empty ``params`` dict before a per-step adversary acts), the first step's
    value stands in for it, since Minari needs one structure per key.
    """
    reset, steps = step_infos[0], step_infos[1:]
    if info_keys is None:
        keys = [
            k
            for k, v in steps[0].items()
            if _numeric(v) and all(k in s and _structure(s[k]) == _structure(v) for s in steps)
        ]
    else:
        keys = list(info_keys)
        for key in keys:
            missing = [i for i, s in enumerate(steps) if key not in s]
            if missing:
                raise DatasetError(
                    f"step info {key!r} is missing at step {missing[0]}; available info keys: {sorted(steps[0])}"
                )
    out = {}
    for key in keys:
        first = reset.get(key)
        if first is None or _structure(first) != _structure(steps[0][key]):
            first = steps[0][key]
        out[key] = _stack([first] + [s[key] for s in steps])
    return out
