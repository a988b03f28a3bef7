"""rlrobust.evaluation."""
