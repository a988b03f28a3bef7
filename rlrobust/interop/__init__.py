"""Interoperability: Stable-Baselines3 models and vector envs (:mod:`rlrobust.interop.sb3`,
:mod:`rlrobust.interop.vec_env`), and anything used as a policy turned into ``obs -> action``
(:mod:`rlrobust.interop.policies`)."""

from __future__ import annotations

from rlrobust.interop.sb3 import SB3Policy, is_sb3_model, load_sb3_policy

__all__ = ["SB3Policy", "is_sb3_model", "load_sb3_policy"]
