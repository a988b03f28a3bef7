"""rlrobust.core."""
