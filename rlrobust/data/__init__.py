"""rlrobust.data."""
