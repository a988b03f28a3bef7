"""Environments and perturbation wrappers (``rlrobust.envs``)."""
