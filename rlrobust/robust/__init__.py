"""rlrobust.robust."""
