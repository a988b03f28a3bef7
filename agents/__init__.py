"""The agents (imported lazily through :mod:`rlrobust.core.registry`; one module per agent)."""
