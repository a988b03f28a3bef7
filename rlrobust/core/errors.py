"""Every error rlrobust raises on purpose subclasses :class:`RlrobustError`.

Each message says what was wrong *and* what would have been valid, so a user can fix the call
without reading the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class RlrobustError(Exception):
    """Base class of all library errors."""


class ConfigError(RlrobustError, ValueError):
    """A configuration value, option name or combination is invalid."""


class UnknownAgentError(ConfigError):
    """An agent name is not registered."""


class SpaceError(RlrobustError, ValueError):
    """An agent, dataset or wrapper was given an observation/action space it cannot handle."""


class CheckpointError(RlrobustError):
    """A checkpoint is missing, incomplete, of another agent, or of a newer format."""


class RunDirLockedError(RlrobustError):
    """Another live run holds the run directory's lock (one writer per run dir)."""


class NonFiniteError(RlrobustError, FloatingPointError):
    """A loss, gradient or environment value became NaN/inf; the step was not applied."""


class PerturbationError(RlrobustError, ValueError):
    """An unknown physical parameter, a value outside its box, or an unknown suite."""


class MissingDependencyError(RlrobustError, ImportError):
    """An optional feature was asked for without the extra that provides it (``pip install rlrobust[warp]``)."""


def choices(valid: Iterable[object]) -> str:
    """Format valid options for an error message: ``'a', 'b', 'c'``."""
    return ", ".join(repr(v) for v in sorted(valid, key=str))


def describe_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, nested: bool = False
) -> list[str]:
    """``"key: <saved> there, <current> now"`` for each key whose values differ, in key order (a key
    missing on one side counts as None); with ``nested``, one level into values that are mappings
    on both sides (``"key.sub: ..."``), so that the message names the entry that changed."""
    out = []
    for key in sorted(set(saved) | set(current), key=str):
        old, new = saved.get(key), current.get(key)
        if old == new:
            continue
        if nested and isinstance(old, Mapping) and isinstance(new, Mapping):
            out += [f"{key}.{line}" for line in describe_differences(old, new)]
        else:
            out.append(f"{key}: {old!r} there, {new!r} now")
    return out
