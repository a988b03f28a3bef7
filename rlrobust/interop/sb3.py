"""Stable-Baselines3 adapters.

* :class:`SB3Policy` turns an SB3 model (or its saved ``.zip``) into a picklable callable
  ``obs -> action`` (deterministic), the form :func:`rlrobust.evaluate` runs in its workers.
  Only the policy network travels to the workers, never the algorithm with its buffers and envs.
* :func:`load_sb3_policy` rebuilds the policy stored in a ``.zip`` from its recorded class and
  ``policy_kwargs`` — the same steps as SB3's ``BaseAlgorithm.load`` — so the caller need not
  know which algorithm saved it (PPO, SAC, TD3, DQN, sb3-contrib's TQC, ...).
* :class:`rlrobust.interop.vec_env.GymnasiumVecEnv` presents a Gymnasium ``VectorEnv`` as an
  SB3 ``VecEnv`` (separate module: it imports SB3 at import time).

Observation normalization (``VecNormalize``) is stored outside the ``.zip`` and is not applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlrobust.core.errors import CheckpointError


def load_sb3_policy(path: str | Path, device: str = "cpu") -> Any:
    """The ``BasePolicy`` saved in an SB3 ``.zip`` (any algorithm), in eval mode on ``device``.

    Raises:
        CheckpointError: if the file is missing or is not an SB3 model archive.
    """
    from stable_baselines3.common.save_util import load_from_zip_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no Stable-Baselines3 model at {str(path)!r} (expected a .zip saved by model.save)"
        )
    try:
        data, params, _ = load_from_zip_file(path, device=device)
        if data is None or params is None:
            raise CheckpointError(f"{str(path)!r} holds no Stable-Baselines3 model data or parameters")
        policy_class = data["policy_class"]
        policy = policy_class(
            data["observation_space"], data["action_space"], lambda _: 0.0, **data.get("policy_kwargs", {})
        )
        policy.load_state_dict(params["policy"])
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} is not a loadable Stable-Baselines3 model ({type(err).__name__}: {err}); "
            "load it with its algorithm class (e.g. SAC.load) and pass the model instead"
        ) from err
    policy.set_training_mode(False)
    return policy.to(device)


class SB3Policy:
    """Deterministic ``obs -> action`` from an SB3 model, its policy, or a ``.zip`` path."""

    def __init__(self, model_or_path: Any, device: str = "cpu") -> None:
        if isinstance(model_or_path, str | Path):
            self.policy = load_sb3_policy(model_or_path, device)
        else:
            policy = getattr(model_or_path, "policy", model_or_path)  # algorithm or BasePolicy
            if not hasattr(policy, "predict"):
                raise TypeError(f"expected an SB3 model or policy, got {type(model_or_path).__name__}")
            self.policy = policy

    def __call__(self, obs: Any) -> np.ndarray:
        action: np.ndarray = self.policy.predict(obs, deterministic=True)[0]
        return action


def is_sb3_model(obj: Any) -> bool:
    """True for SB3 algorithms and policies (checked without importing SB3 eagerly)."""
    module = type(obj).__module__
    return module.startswith(("stable_baselines3", "sb3_contrib")) and hasattr(obj, "predict")
