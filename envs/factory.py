"""``make_env``: from a perturbation config to a wrapped env, the one entry point the trainer,
the evaluator and the configs use.

A config is None, a mapping as in ``conf/perturbation/*.yaml`` or a list of them; its ``kind``
picks a wrapper of :mod:`rlrobust.envs.perturbation` (physical parameters, forces, actions) or
a disruption (:data:`rlrobust.envs.build.DISRUPTIONS`), and a ``suite`` key reads its box from
:mod:`rlrobust.envs.suites`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rlrobust.core.errors import ConfigError, PerturbationError, choices
from rlrobust.envs.build import DISRUPTIONS, make_base_env, plain, wrap_disruption
from rlrobust.envs.perturbation import (
    AdversaryPolicy,
    Bounds,
    DynamicParameterAdversary,
    ExternalForceAdversary,
    NoisyActionAdversary,
    ParameterPerturbation,
    ProbabilisticActionAdversary,
    SequenceSampler,
    UniformSampler,
)
from rlrobust.envs.suites import get_suite

_KINDS = (
    "none",
    "static",
    "random",
    "dynamic",
    "force",
    "noisy_action",
    "probabilistic_action",
    *DISRUPTIONS,
)
_KEYS = {
    "none": set(),
    "static": {"suite", "values", "bounds"},
    "random": {"suite", "values", "bounds", "points"},
    "dynamic": {"suite", "bounds", "adversary"},
    "force": {"bodies", "max_force", "axes", "adversary"},
    "noisy_action": {"alpha", "adversary"},
    "probabilistic_action": {"alpha", "adversary"},
}


def _adversary_from_config(spec: Any) -> AdversaryPolicy | str | None:
    """``None``, ``"random"``, or ``"package.module:callable"`` (imported)."""
    if spec is None or spec == "random" or callable(spec):
        return spec
    if isinstance(spec, str) and ":" in spec:
        module, attr = spec.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    raise ConfigError(f"adversary must be null, 'random' or 'package.module:callable', got {spec!r}")


def _box_from(spec: Mapping[str, Any], env_id: str) -> Bounds | None:
    """``bounds`` if given, else the suite's box (checking the suite is for this task)."""
    if spec.get("bounds") is not None:
        return {k: (float(v[0]), float(v[1])) for k, v in spec["bounds"].items()}
    if spec.get("suite") is None:
        return None
    suite = get_suite(spec["suite"])
    suite.check_env(env_id)
    return dict(suite.bounds)


def apply_perturbation(env: gym.Env, perturbation: Any, env_id: str = "") -> gym.Env:
    """Wrap ``env`` as described by ``perturbation`` (see :func:`make_env`)."""
    spec = plain(perturbation)
    if spec is None:
        return env
    if isinstance(spec, list):
        for item in spec:
            env = apply_perturbation(env, item, env_id)
        return env
    if not isinstance(spec, dict):
        raise ConfigError(f"perturbation must be a mapping or a list of mappings, got {perturbation!r}")
    kind = spec.pop("kind", "none" if not spec else None)
    if kind not in _KINDS:
        raise ConfigError(f"unknown perturbation kind {kind!r}; valid: {choices(_KINDS)}")
    spec.pop("name", None)  # a free-form label the configs may carry
    if kind in DISRUPTIONS:
        return wrap_disruption(env, kind, spec)
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise ConfigError(
            f"unknown key(s) {choices(unknown)} for perturbation kind {kind!r}; valid: {choices(_KEYS[kind])}"
        )
    env_id = env_id or (env.spec.id if env.spec is not None else "")
    if kind == "none":
        return env
    if kind in ("static", "random"):
        box = _box_from(spec, env_id)
        sampler: Any = None
        if kind == "random":
            if spec.get("points"):
                sampler = SequenceSampler(spec["points"])
            elif box:
                sampler = UniformSampler(box)
            else:
                raise PerturbationError("kind 'random' needs a suite, bounds or points to draw from")
        return ParameterPerturbation(env, sampler=sampler, bounds=box, **(spec.get("values") or {}))
    if kind == "dynamic":
        box = _box_from(spec, env_id)
        return DynamicParameterAdversary(
            env, box or {}, adversary=_adversary_from_config(spec.get("adversary"))
        )
    if kind == "force":
        return ExternalForceAdversary(
            env,
            spec.get("bodies") or [],
            max_force=float(spec.get("max_force", 3.0)),
            axes=spec.get("axes", "xyz"),
            adversary=_adversary_from_config(spec.get("adversary")),
        )
    cls = NoisyActionAdversary if kind == "noisy_action" else ProbabilisticActionAdversary
    return cls(
        env,
        alpha=float(spec.get("alpha", 0.1)),
        adversary=_adversary_from_config(spec.get("adversary", "random")),
    )


def make_env(env_id: str, perturbation: Any = None, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` plus the wrappers described by ``perturbation``.

    ``perturbation`` is None, a mapping as in ``conf/perturbation/*.yaml``, or a list of them
    (applied in order, innermost first). Keys by ``kind``:

    * ``none`` (or None): the bare env.
    * ``static``: ``values: {name: value}``; optional ``suite`` or ``bounds`` box they must lie in.
    * ``random``: domain randomization, redrawn at each reset: uniform over ``suite``'s box or
      ``bounds``, or cycling through ``points: [{name: value}, ...]``; ``values`` fixes others.
    * ``dynamic``: per-step parameters in ``suite``'s box or ``bounds``, chosen by
      ``adversary`` (null = set later via ``set_adversary``, ``random``, or ``module:callable``).
    * ``force``: ``bodies``, ``max_force`` (3.0), ``axes`` (``xyz``), ``adversary``.
    * ``noisy_action`` / ``probabilistic_action``: ``alpha`` (0.1), ``adversary`` (``random``).
    * ``observation_noise``, ``observation_attack``
      (:mod:`rlrobust.envs.observation_disruption`), ``reward``
      (:mod:`rlrobust.envs.reward_disruption`), ``drift`` (:mod:`rlrobust.envs.drift`): the
      other keys are the wrapper's keyword arguments (``scale``, ``eps``, ``bounds``, ...).

    Raises:
        ConfigError: unknown kind or key.
        PerturbationError: unknown parameter/body/suite or a value outside its box, listing valid ones.
    """
    env = make_base_env(env_id, **kwargs)
    try:
        return apply_perturbation(env, perturbation, env_id)
    except Exception:
        env.close()
        raise
