"""Per-world model fields for a batched simulation, written by the CPU parameter handler.

Each world of a batched simulation is one setting of a task's named physical parameters
(:mod:`rlrobust.envs.mujoco_params`). Nothing here restates what a parameter changes: the
handler the CPU wrappers use writes each setting into one host ``MjModel`` (``mj_setConst``
included) and the fields it touched are read back, one row per world. So a world's model equals,
field by field, the model of a CPU env perturbed by ``ParameterPerturbation`` with the same
values — derived constants (``body_subtreemass``, ``body_invweight0``, ``dof_invweight0``,
``actuator_acc0``, ...) included. Which fields a parameter touches is found once, by applying a
probe value and comparing every model array with the nominal one, so a derived field cannot be
forgotten (a batched simulator that kept one shared copy of a derived field would silently give
every world the first world's value).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobust.core.errors import PerturbationError
from rlrobust.envs.mujoco_params import MujocoParameters, physical_parameters

GRAVITY = "opt.gravity"  # the one touched quantity that lives in the model's options


class WorldParameters:
    """Per-world values of the model fields that a set of named parameters touches.

    Args:
        env: a Gymnasium MuJoCo env of the task; its model is used as scratch (left nominal).
        names: the parameters that may vary between worlds.
        bounds: optional box ``{name: (low, high)}`` every value must lie in (as in the CPU wrapper).

    Raises:
        PerturbationError: unknown name or unphysical bound, listing the valid names.
    """

    def __init__(
        self, env: gym.Env, names: Iterable[str], bounds: Mapping[str, Sequence[float]] | None = None
    ) -> None:
        handler = physical_parameters(env)
        if not isinstance(handler, MujocoParameters):
            raise PerturbationError(f"{handler.label} is not a MuJoCo env; batched worlds need one")
        self.handler = handler
        self.model = env.unwrapped.model  # type: ignore[attr-defined]
        self.bounds = None if bounds is None else handler.check_bounds(bounds)
        self.names = tuple(dict.fromkeys(names))
        handler.validate(
            dict.fromkeys(self.names, 1.0)
        )  # unknown names raise, listing valid ones (1.0 is valid for all)
        self.fields = self._touched_fields()

    def validate(self, values: Mapping[str, Any]) -> dict[str, float]:
        """Check one world's setting as the CPU wrapper does (names, physical range, box).

        Raises:
            PerturbationError: naming the bad entry; also for a name outside ``names``.
        """
        out = self.handler.validate(values, self.bounds)
        extra = set(out) - set(self.names)
        if extra:
            raise PerturbationError(
                f"parameter(s) {sorted(extra)} were not declared for these worlds; declared: {list(self.names)}"
            )
        return out

    def rows(self, settings: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
        """``{field: (len(settings), *shape)}``: each touched field as the handler writes it per setting.

        Names left out of a setting are nominal. The scratch model is nominal again afterwards.
        """
        out = {f: np.empty((len(settings), *np.shape(self._read(f)))) for f in self.fields}
        try:
            for i, values in enumerate(settings):
                self.handler.apply(self.validate(values))
                for f in self.fields:
                    out[f][i] = self._read(f)
        finally:
            self.handler.restore()
        return out

    def _read(self, field: str) -> np.ndarray:
        return self.model.opt.gravity if field == GRAVITY else getattr(self.model, field)

    def _touched_fields(self) -> tuple[str, ...]:
        arrays = [
            n
            for n in dir(self.model)
            if not n.startswith("_") and isinstance(getattr(self.model, n), np.ndarray)
        ]
        nominal = {f: self._read(f).copy() for f in [*arrays, GRAVITY]}
        touched: set[str] = set()
        try:
            for name in self.names:
                info = self.handler.infos[name]
                self.handler.apply({name: info.nominal * 0.5 if info.nominal > 0 else 1.0})
                touched |= {f for f, v in nominal.items() if not np.array_equal(self._read(f), v)}
        finally:
            self.handler.restore()
        return tuple(sorted(touched))
