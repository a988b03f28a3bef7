"""Reward disruptions for training-time robustness: the agent is paid a disturbed reward.

:class:`RewardDisruption` scales the reward, adds random noise and flips its sign at a rate —
Robust-Gymnasium's "observed reward" disruptions (Gu et al., ICLR 2025), the online
counterpart of the reward corruption of offline data in :mod:`rlrobust.data.corruption`. The
true reward stays in ``info["true_reward"]``, so an evaluation can still score the task.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym

from rlrobust.core.errors import ConfigError, choices
from rlrobust.envs.observation_disruption import NOISE_DISTRIBUTIONS
from rlrobust.envs.perturbation import stream_generator


class RewardDisruption(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Pays ``±(scale · r + noise · ξ)`` instead of ``r``.

    ``ξ`` is standard Gaussian or uniform on ``[-1, 1]``; the sign is flipped with probability
    ``flip_rate`` at each step. Draws come from the wrapper's own generator, seeded by
    ``reset(seed=...)``. ``scale=1, noise=0, flip_rate=0`` (the defaults) pays the env's reward
    unchanged, bit for bit.

    Args:
        env: any env.
        scale: multiplies the reward (finite, >= 0; flips handle the sign).
        noise: scale of the additive noise (std for Gaussian, half-width for uniform), >= 0.
        flip_rate: probability in [0, 1] that a step's reward changes sign.
        distribution: ``"gaussian"`` or ``"uniform"``.

    Raises:
        ConfigError: a negative or non-finite scale or noise, a flip rate outside [0, 1], an
            unknown distribution.
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        scale: float = 1.0,
        noise: float = 0.0,
        flip_rate: float = 0.0,
        distribution: str = "gaussian",
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, scale=scale, noise=noise, flip_rate=flip_rate, distribution=distribution
        )
        super().__init__(env)
        if distribution not in NOISE_DISTRIBUTIONS:
            raise ConfigError(
                f"unknown noise distribution {distribution!r}; valid: {choices(NOISE_DISTRIBUTIONS)}"
            )
        self.distribution = distribution
        self._rng = None
        self.set_disruption(scale=scale, noise=noise, flip_rate=flip_rate)

    def set_disruption(
        self, *, scale: float | None = None, noise: float | None = None, flip_rate: float | None = None
    ) -> None:
        """Change any of the three settings (None keeps it)."""
        scale = getattr(self, "scale", 1.0) if scale is None else scale
        noise = getattr(self, "noise", 0.0) if noise is None else noise
        flip_rate = getattr(self, "flip_rate", 0.0) if flip_rate is None else flip_rate
        for name, value in (("scale", scale), ("noise", noise)):
            if not (math.isfinite(float(value)) and float(value) >= 0):
                raise ConfigError(f"reward {name} must be finite and >= 0, got {value!r}")
        if not 0.0 <= float(flip_rate) <= 1.0:
            raise ConfigError(f"flip_rate must lie in [0, 1], got {flip_rate!r}")
        self.scale, self.noise, self.flip_rate = float(scale), float(noise), float(flip_rate)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None or self._rng is None:
            self._rng = stream_generator(seed, "reward")
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["true_reward"] = reward
        return obs, self._disturb(reward), terminated, truncated, info

    def _disturb(self, reward: Any) -> Any:
        if self.scale == 1.0 and self.noise == 0.0 and self.flip_rate == 0.0:
            return reward
        assert self._rng is not None, "call reset() before step()"
        out = self.scale * float(reward)
        if self.noise > 0:
            xi = self._rng.normal() if self.distribution == "gaussian" else self._rng.uniform(-1.0, 1.0)
            out += self.noise * xi
        if self.flip_rate > 0 and self._rng.random() < self.flip_rate:
            out = -out
        return out
