"""rlrobust.interop."""
