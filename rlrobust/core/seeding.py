"""Seeding without global RNGs.

Library code never calls ``np.random.<fn>``, ``random.<fn>`` or ``torch.manual_seed``: every
component owns a generator derived from the run seed here, so two runs with the same seed are
identical and a generator's state can be checkpointed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported on use, so env worker processes start without it
    import torch


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 32-bit seeds derived from ``seed`` (NumPy ``SeedSequence``)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


def numpy_generator(seed: int) -> np.random.Generator:
    """A NumPy generator owned by one component."""
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on ``device`` (CPU or CUDA) owned by one component."""
    import torch

    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed) % (2**63))
    return gen


def numpy_state(gen: np.random.Generator) -> dict[str, Any]:
    """Checkpointable state of a NumPy generator."""
    return dict(gen.bit_generator.state)


def set_numpy_state(gen: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore a generator's bit-generator state (inverse of :func:`numpy_state`)."""
    gen.bit_generator.state = state
