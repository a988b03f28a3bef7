"""Every error rlrobust raises on purpose subclasses :class:`RlrobustError`.

Each message says what was wrong *and* what would have been valid, so a user can fix the call
without reading the source.
"""

from __future__ import annotations

from collections.abc import Iterable


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
