"""A Gymnasium ``VectorEnv`` behind Stable-Baselines3's ``VecEnv`` interface.

Lets SB3 train or evaluate on the same (Async) vector envs, wrappers and perturbations that
rlrobust uses, e.g. ``SAC("MlpPolicy", GymnasiumVecEnv(AsyncVectorEnv(...)))``.

Gymnasium's default NEXT_STEP autoreset returns the reset observation one call *after* the
episode ends; SB3 expects it in the same call, with the last observation in
``infos[i]["terminal_observation"]``. So the vector env must be made with
``autoreset_mode=AutoresetMode.SAME_STEP`` (Gymnasium >= 1.1), where the final observation comes
back in ``info["final_obs"]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv


class GymnasiumVecEnv(VecEnv):
    """SB3 ``VecEnv`` view of a Gymnasium vector env made with SAME_STEP autoreset."""

    def __init__(self, venv: gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "GymnasiumVecEnv needs autoreset_mode=AutoresetMode.SAME_STEP "
                f"(e.g. SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)), got {mode}"
            )
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> Any:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> Any:
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        values = list(self.venv.get_attr(attr_name))
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        if indices is not None:
            raise NotImplementedError(
                "GymnasiumVecEnv.set_attr sets every sub-env; indices are not supported"
            )
        self.venv.set_attr(attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        values = list(self.venv.call(method_name, *args, **kwargs))
        return [values[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        # SB3 asks this to warn when a Monitor is missing; Gymnasium sub-envs may live in other
        # processes, so answer "not wrapped" (SB3 then only warns) rather than guess.
        return [False] * len(list(self._get_indices(indices)))
