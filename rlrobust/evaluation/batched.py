"""Suite evaluation as one batched simulation: ``evaluate(policy, suite, backend="warp")``.

Every point x episode of the suite is one world of a
:class:`~rlrobust.envs.batched.warp_env.WarpVectorEnv`: world ``p * E + e`` holds point ``p``'s
parameters and starts from episode ``e``'s reset seed — the common random numbers of the CPU
backend, so both backends start every episode in the same state — and the policy is called
once per control step on all ``W = P * E`` observations, a ``(W, obs_dim)`` tensor on the
simulation device. A world whose episode has ended stops counting (it resets and keeps stepping
until the last episode ends), so each world contributes exactly its first episode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rlrobust.core.errors import ConfigError, PerturbationError, choices
from rlrobust.envs.suites import Suite, get_suite, list_suites

BACKENDS = ("cpu", "warp")


def supported_suites() -> list[str]:
    """The suites whose task the batched backend simulates."""
    from rlrobust.envs.batched.tasks import TASKS

    # Physical boxes only: a disruption suite's grid is not a set of model parameters.
    return [s for s in list_suites() if get_suite(s).env_id in TASKS and get_suite(s).disruption is None]


def check_backend(backend: str, suite: Suite) -> None:
    """Refuse an unknown backend, a suite it cannot run, or a missing extra, before any work.

    Raises:
        ConfigError: unknown backend, listing the valid ones.
        PerturbationError: a suite the batched backend does not support, listing those it does.
        MissingDependencyError: ``backend="warp"`` without the ``warp`` extra.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid: {choices(BACKENDS)}")
    if backend == "cpu":
        return
    if suite.id not in supported_suites():
        raise PerturbationError(
            f"backend={backend!r} does not support suite {suite.id!r} ({suite.env_id}); "
            f"supported: {choices(supported_suites())}"
        )
    from rlrobust.envs.batched.warp_env import import_warp

    import_warp()


def evaluate_batched(
    policy: Any,
    suite: Suite,
    points: Sequence[Mapping[str, float]],
    seeds: Sequence[int],
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths, both ``(P, E)``, of one episode per point and reset seed.

    Args:
        policy: what :func:`rlrobust.interop.policies.as_policy` returns.
        suite: the suite (its box bounds every point).
        points: ``P`` parameter settings.
        seeds: ``E`` reset seeds, the same at every point.
        env_kwargs: forwarded to ``gym.make`` (``max_episode_steps``, ...).
        device: the Warp device, also where the policy's observations live.
    """
    from rlrobust.envs.batched.warp_env import WarpVectorEnv
    from rlrobust.interop.policies import as_batched_policy

    episodes = len(seeds)
    if not points or not episodes:
        raise ConfigError(f"need at least one point and one seed, got {len(points)} and {episodes}")
    act = as_batched_policy(policy)
    worlds = len(points) * episodes
    env = WarpVectorEnv(
        suite.env_id,
        worlds,
        params=[p for p in points for _ in range(episodes)],
        bounds=suite.bounds,
        device=device,
        **dict(env_kwargs or {}),
    )
    try:
        obs, _ = env.reset(seed=[int(s) for _ in points for s in seeds])
        returns = np.zeros(worlds)  # float64 sums of float32 rewards
        lengths = np.zeros(worlds, dtype=np.int64)
        running = np.ones(worlds, dtype=bool)
        while running.any():
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            returns[running] += reward.cpu().numpy().astype(np.float64)[running]
            lengths[running] += 1
            running &= ~(terminated | truncated).cpu().numpy()
    finally:
        env.close()
    return returns.reshape(len(points), episodes), lengths.reshape(len(points), episodes)
