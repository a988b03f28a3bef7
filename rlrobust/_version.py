"""The library version, in a module of its own so that the core (checkpoint manifests) reads it
without importing the public API in ``rlrobust/__init__.py``."""

__version__ = "0.1.0"
