"""Time-varying physics: named parameters that drift within an episode on a schedule.

A non-stationary disruption of the environment (Robust-Gymnasium's "when: non-stationary"
axis, Gu et al., ICLR 2025): where :class:`~rlrobust.envs.perturbation.ParameterPerturbation`
holds a model for a whole episode and
:class:`~rlrobust.envs.perturbation.DynamicParameterAdversary` lets an adversary choose it
at every step, :class:`ParameterDrift` moves it along a fixed schedule, the same in every
episode. Parameter names are those of :mod:`rlrobust.envs.mujoco_params`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from rlrobust.core.errors import ConfigError, PerturbationError, choices
from rlrobust.envs.perturbation import _ParameterWrapper

SCHEDULES = ("linear", "step", "sinusoid")


def schedule_fraction(schedule: str, rate: float, step: int) -> float:
    """How far (0 = ``start``, 1 = ``end``) a parameter is after ``step`` env steps.

    * ``linear``: ``min(rate · step, 1)`` — reaches ``end`` at step ``1/rate`` and stays;
    * ``step``: 0 before step ``1/rate``, 1 from then on;
    * ``sinusoid``: ``(1 − cos(2π · rate · step)) / 2`` — ``start`` at step 0, ``end`` at
      ``1/(2·rate)``, back at ``start`` at ``1/rate``, and so on.

    ``rate = 0`` keeps ``start`` for ever.
    """
    x = rate * step
    if schedule == "linear":
        return min(x, 1.0)
    if schedule == "step":
        return 1.0 if x >= 1.0 else 0.0
    return (1.0 - math.cos(2.0 * math.pi * x)) / 2.0


class ParameterDrift(_ParameterWrapper, gym.utils.RecordConstructorArgs):
    """Physical parameters that move from ``start`` to ``end`` along a schedule in each episode.

    At reset every parameter is back at ``start``; before the ``k``-th step (``k = 0, 1, ...``)
    it is set to ``(1 − f) · start + f · end`` with ``f = schedule_fraction(schedule, rate, k)``,
    so it lies between the two bounds and equals each exactly where the schedule says.
    Parameters not named stay nominal. The values in force are in ``info["params"]``.

    Args:
        env: a MuJoCo or CartPole/Pendulum env (at most one parameter wrapper per env).
        bounds: ``{name: (start, end)}``; ``start`` may exceed ``end`` (a decreasing drift).
        schedule: ``"linear"``, ``"step"`` or ``"sinusoid"``.
        rate: schedule speed in 1/steps (``linear``/``step`` reach ``end`` at step ``1/rate``),
            finite and >= 0.

    Raises:
        PerturbationError: an unknown parameter or a bound outside its valid range (both name
            the valid values).
        ConfigError: an unknown schedule, a negative or non-finite rate.
    """

    def __init__(
        self,
        env: gym.Env,
        bounds: Mapping[str, Sequence[float]],
        *,
        schedule: str = "linear",
        rate: float = 0.01,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, bounds=bounds, schedule=schedule, rate=rate)
        super().__init__(env)
        if not bounds:
            raise PerturbationError(
                f"ParameterDrift needs bounds; valid names: {choices(self.physical.infos)}"
            )
        if schedule not in SCHEDULES:
            raise ConfigError(f"unknown drift schedule {schedule!r}; valid: {choices(SCHEDULES)}")
        self.schedule = schedule
        self.bounds: dict[str, tuple[float, float]] = {}
        for name, pair in bounds.items():
            try:
                start, end = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise PerturbationError(
                    f"drift of {name!r} needs a pair [start, end], got {pair!r}"
                ) from None
            self.physical.validate({name: start})  # unknown names and unphysical ends raise here
            self.physical.validate({name: end})
            self.bounds[name] = (start, end)
        self.set_disruption(rate=rate)
        self._steps = 0
        self._applied: dict[str, float] | None = None

    def set_disruption(self, *, rate: float) -> None:
        """Change the schedule's speed (also what a suite's grid point sets)."""
        if not (math.isfinite(float(rate)) and float(rate) >= 0):
            raise ConfigError(f"drift rate must be finite and >= 0 (0 = no drift), got {rate!r}")
        self.rate = float(rate)

    def values_at(self, step: int) -> dict[str, float]:
        """The parameter values in force during the ``step``-th transition of an episode."""
        f = schedule_fraction(self.schedule, self.rate, step)
        return {name: (1.0 - f) * start + f * end for name, (start, end) in self.bounds.items()}

    def _apply(self, values: dict[str, float]) -> None:
        if values != self._applied:  # a held value (rate 0, linear past its end) costs nothing
            self.physical.apply(values)
            self._applied = values

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        self._steps = 0
        self._applied = None
        values = self.values_at(0)
        self._apply(values)  # before the inner reset, as ParameterPerturbation does
        obs, info = self.env.reset(seed=seed, options=options)
        info["params"] = dict(values)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        values = self.values_at(self._steps)
        self._apply(values)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        info["params"] = dict(values)
        return obs, reward, terminated, truncated, info
