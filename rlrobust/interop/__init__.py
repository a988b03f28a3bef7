"""Interoperability with Stable-Baselines3 (:mod:`rlrobust.interop.sb3`, :mod:`rlrobust.interop.vec_env`)."""

from __future__ import annotations

from rlrobust.interop.sb3 import SB3Policy, is_sb3_model, load_sb3_policy

__all__ = ["SB3Policy", "is_sb3_model", "load_sb3_policy"]
