"""Gymnasium's MuJoCo v5 tasks as batched functions of the simulator state.

A batched simulator holds ``W`` worlds' joint positions and velocities as ``(W, nq)`` and
``(W, nv)`` tensors. A :class:`BatchedTask` turns them into what ``gymnasium.make(env_id).step``
returns for every world — observation, reward, termination — with the formulas of Gymnasium's
own ``hopper_v5.py``, ``walker2d_v5.py``, ``half_cheetah_v5.py`` and ``inverted_pendulum_v5.py``,
and draws reset states as their ``reset_model`` does: the same generator calls in the same
order, so a world whose generator is seeded like a Gymnasium env starts in the same state.

Every constant (reward weights, healthy ranges, reset noise, frame skip, initial state) is read
from a Gymnasium env made with the same keyword arguments, never restated here, so ``gym.make``
options such as ``ctrl_cost_weight=...`` carry over.

Torch only (no simulator): the tensors may live on any device.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.errors import PerturbationError, choices


class BatchedTask:
    """One task's step outputs, computed for a batch of worlds.

    Args:
        env: a Gymnasium env of the task (wrappers allowed); only its constants are read.
    """

    def __init__(self, env: gym.Env) -> None:
        base = env.unwrapped
        self.frame_skip = int(base.frame_skip)  # type: ignore[attr-defined]
        self.dt = float(base.dt)  # type: ignore[attr-defined]
        self.init_qpos = np.array(base.init_qpos, dtype=np.float64)  # type: ignore[attr-defined]
        self.init_qvel = np.array(base.init_qvel, dtype=np.float64)  # type: ignore[attr-defined]
        self.reset_noise_scale = float(base._reset_noise_scale)  # type: ignore[attr-defined]
        self.obs_dim = int(base.observation_space.shape[0])

    def observe(self, qpos: torch.Tensor, qvel: torch.Tensor) -> torch.Tensor:
        """``(W, obs_dim)`` observations (``_get_obs``)."""
        raise NotImplementedError

    def outcome(
        self, x_before: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W,)`` rewards and terminations after a step from root x-positions ``x_before``."""
        raise NotImplementedError

    def reset_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One world's initial ``(qpos, qvel)``, drawn from ``rng`` as ``reset_model`` draws them."""
        s = self.reset_noise_scale
        qpos = self.init_qpos + rng.uniform(low=-s, high=s, size=self.init_qpos.size)
        qvel = self.init_qvel + rng.uniform(low=-s, high=s, size=self.init_qvel.size)
        return qpos, qvel


class _Locomotion(BatchedTask):
    """Planar runners: reward = forward velocity (+ healthy bonus) - control cost."""

    clip_velocity: float | None = None  # Hopper and Walker2d clip observed velocities to +-10

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        base = env.unwrapped
        self.forward_reward_weight = float(base._forward_reward_weight)  # type: ignore[attr-defined]
        self.ctrl_cost_weight = float(base._ctrl_cost_weight)  # type: ignore[attr-defined]
        self.exclude_x = bool(base._exclude_current_positions_from_observation)  # type: ignore[attr-defined]

    def observe(self, qpos: torch.Tensor, qvel: torch.Tensor) -> torch.Tensor:
        position = qpos[:, 1:] if self.exclude_x else qpos
        velocity = qvel if self.clip_velocity is None else qvel.clamp(-self.clip_velocity, self.clip_velocity)
        return torch.cat([position, velocity], dim=1)

    def healthy(self, qpos: torch.Tensor, qvel: torch.Tensor) -> torch.Tensor | None:
        """``(W,)`` booleans of ``is_healthy``, or None for a task without one."""
        return None

    def outcome(
        self, x_before: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_velocity = (qpos[:, 0] - x_before) / self.dt
        reward = self.forward_reward_weight * x_velocity - self.ctrl_cost_weight * action.square().sum(dim=1)
        healthy = self.healthy(qpos, qvel)
        if healthy is None:
            return reward, torch.zeros_like(reward, dtype=torch.bool)
        reward = reward + self.healthy_reward * healthy
        return reward, ~healthy & self.terminate_when_unhealthy

    def _healthy_constants(self, env: gym.Env) -> None:
        base = env.unwrapped
        self.healthy_reward = float(base._healthy_reward)  # type: ignore[attr-defined]
        self.terminate_when_unhealthy = bool(base._terminate_when_unhealthy)  # type: ignore[attr-defined]
        self.z_range = tuple(map(float, base._healthy_z_range))  # type: ignore[attr-defined]
        self.angle_range = tuple(map(float, base._healthy_angle_range))  # type: ignore[attr-defined]

    def _z_and_angle_ok(self, qpos: torch.Tensor) -> torch.Tensor:
        z, angle = qpos[:, 1], qpos[:, 2]
        return (
            (self.z_range[0] < z)
            & (z < self.z_range[1])
            & (self.angle_range[0] < angle)
            & (angle < self.angle_range[1])
        )


class Hopper(_Locomotion):
    """``Hopper-v5``: healthy while z, torso angle and every state entry after the first two lie in range."""

    clip_velocity = 10.0

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._healthy_constants(env)
        self.state_range = tuple(map(float, env.unwrapped._healthy_state_range))  # type: ignore[attr-defined]

    def healthy(self, qpos: torch.Tensor, qvel: torch.Tensor) -> torch.Tensor:
        state = torch.cat([qpos, qvel], dim=1)[:, 2:]  # state_vector()[2:]
        lo, hi = self.state_range
        return ((lo < state) & (state < hi)).all(dim=1) & self._z_and_angle_ok(qpos)


class Walker2d(_Locomotion):
    """``Walker2d-v5``: healthy while z and torso angle lie in range."""

    clip_velocity = 10.0

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._healthy_constants(env)

    def healthy(self, qpos: torch.Tensor, qvel: torch.Tensor) -> torch.Tensor:
        return self._z_and_angle_ok(qpos)


class HalfCheetah(_Locomotion):
    """``HalfCheetah-v5``: never terminates; initial velocities are Gaussian."""

    def reset_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.reset_noise_scale
        qpos = self.init_qpos + rng.uniform(low=-s, high=s, size=self.init_qpos.size)
        qvel = self.init_qvel + s * rng.standard_normal(self.init_qvel.size)
        return qpos, qvel


class InvertedPendulum(BatchedTask):
    """``InvertedPendulum-v5``: reward 1 while the pole stays within 0.2 rad (and the state is finite)."""

    def observe(self, qpos: torch.Tensor, qvel: torch.Tensor) -> torch.Tensor:
        return torch.cat([qpos, qvel], dim=1)

    def outcome(
        self, x_before: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        obs = self.observe(qpos, qvel)
        terminated = ~torch.isfinite(obs).all(dim=1) | (obs[:, 1].abs() > 0.2)
        return (~terminated).to(obs.dtype), terminated


#: Gymnasium id -> batched definition; the tasks the batched backends support.
TASKS: dict[str, type[BatchedTask]] = {
    "Hopper-v5": Hopper,
    "HalfCheetah-v5": HalfCheetah,
    "Walker2d-v5": Walker2d,
    "InvertedPendulum-v5": InvertedPendulum,
}


def check_task(env_id: str) -> type[BatchedTask]:
    """The batched definition of ``env_id``.

    Raises:
        PerturbationError: for a task without one, listing the supported ids.
    """
    if env_id not in TASKS:
        raise PerturbationError(
            f"the batched backend does not support {env_id!r}; supported: {choices(TASKS)}"
        )
    return TASKS[env_id]
