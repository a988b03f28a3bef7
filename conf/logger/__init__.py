"""Hydra configs shipped as package data (loadable as ``pkg://rlrobust.conf``)."""
