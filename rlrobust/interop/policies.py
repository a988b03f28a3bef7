"""Everything :func:`rlrobust.evaluate` accepts as a policy, turned into ``obs -> action``.

The result must be picklable, because evaluation workers receive it by pickle: agents and SB3
policies are (torch modules pickle), and so are :class:`ConstantPolicy` and
:class:`LinearPolicy`, two cheap fixed policies for smoke tests and benchmarks. A lambda is not;
:func:`rlrobust.evaluate` then runs in-process and says so.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

Policy = Any  # a callable obs -> action


class AgentPolicy:
    """Deterministic ``obs -> action`` from an rlrobust agent (batched ``act``)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def __call__(self, obs: Any) -> Any:
        return self.agent.act(np.asarray(obs)[None], deterministic=True)[0]


class ConstantPolicy:
    """Always the same action (e.g. zeros: a free-falling robot, the cheapest MuJoCo step)."""

    def __init__(self, action: Any) -> None:
        self.action = np.asarray(action)

    def __call__(self, obs: Any) -> Any:
        return self.action


class LinearPolicy:
    """A tiny deterministic controller: ``clip(W @ obs + b, low, high)`` for continuous actions,
    or ``argmax(W @ obs + b)`` with ``discrete=True`` (one row of ``W`` per action)."""

    def __init__(
        self, weight: Any, bias: Any, low: Any = -1.0, high: Any = 1.0, *, discrete: bool = False
    ) -> None:
        self.weight = np.asarray(weight, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.low, self.high, self.discrete = low, high, discrete

    def __call__(self, obs: Any) -> Any:
        """One action for one observation, or ``(B, act_dim)`` actions for ``(B, obs_dim)``."""
        out = np.asarray(obs, dtype=np.float64) @ self.weight.T + self.bias
        if self.discrete:
            return int(np.argmax(out)) if out.ndim == 1 else out.argmax(axis=-1)
        return np.clip(out, self.low, self.high).astype(np.float32)


def as_batched_policy(policy: Policy) -> Policy:
    """``(B, obs_dim) -> (B, act_dim)`` from what :func:`as_policy` returns, for batched simulators.

    Agents act on the whole batch in one call; the NumPy policies here and SB3's get a NumPy
    copy of the batch (they accept batches); any other callable receives the batch as it comes
    (a torch tensor on the simulation device) and must return one action per row.
    """
    from rlrobust.interop.sb3 import SB3Policy

    if isinstance(policy, AgentPolicy):
        return functools.partial(policy.agent.act, deterministic=True)
    if isinstance(policy, ConstantPolicy):
        return lambda obs: np.repeat(policy.action[None], len(obs), axis=0)
    if isinstance(policy, LinearPolicy | SB3Policy):
        return lambda obs: policy(obs.cpu().numpy() if hasattr(obs, "cpu") else obs)
    return policy


def policy_spaces(policy: Any) -> tuple[Any, Any] | None:
    """``(observation_space, action_space)`` the policy was built for, when it records them (an
    rlrobust agent or checkpoint, an SB3 model), else None (a plain callable)."""
    for holder in (getattr(policy, "agent", None), getattr(policy, "policy", None), policy):
        obs, act = getattr(holder, "observation_space", None), getattr(holder, "action_space", None)
        if obs is not None and act is not None:
            return obs, act
    return None


def spaces_fit(policy_space: Any, env_space: Any) -> bool:
    """Whether a policy built for ``policy_space`` can act in ``env_space``: the same kind of space
    and the same shape (``n`` for Discrete). Bounds and dtypes may differ (wrappers rescale them)."""
    import gymnasium as gym

    if type(policy_space) is not type(env_space):
        return False
    if isinstance(env_space, gym.spaces.Discrete):
        return int(policy_space.n) == int(env_space.n)
    if isinstance(env_space, gym.spaces.Box):
        return tuple(policy_space.shape) == tuple(env_space.shape)
    return bool(policy_space == env_space)


def as_policy(policy: Any, device: str = "cpu") -> Policy:
    """Turn an agent, checkpoint path, SB3 model or ``.zip``, or callable into ``obs -> action``.

    Raises:
        TypeError: for anything else, listing what is accepted.
    """
    from rlrobust.interop.sb3 import SB3Policy, is_sb3_model

    if isinstance(policy, str | Path):
        if str(policy).endswith(".zip"):
            return SB3Policy(policy, device)
        from rlrobust.core.checkpoint import load_agent  # the trainer's checkpoints

        return AgentPolicy(load_agent(policy, device=device))
    if is_sb3_model(policy):
        return SB3Policy(policy)
    if hasattr(policy, "act"):
        return AgentPolicy(policy)
    if callable(policy):
        return policy
    raise TypeError(
        f"cannot evaluate a {type(policy).__name__}; pass an rlrobust agent, a checkpoint path, "
        "a Stable-Baselines3 model or .zip path, or a callable obs -> action"
    )
