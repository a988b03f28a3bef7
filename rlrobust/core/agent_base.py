"""A small base class that implements the bookkeeping half of the Agent protocol once.

Subclasses build their networks and optimizers in ``__init__`` and list them in
:meth:`AgentBase.networks` and :meth:`AgentBase.optimizers`; they get for free:

* ``state_dict`` / ``load_state_dict`` covering every network (targets included), optimizer,
  the update counter, the agent's RNG states and any ``extra_state`` (running statistics), with
  all key/shape problems (extra state included) collected and reported *before* anything is
  changed, so ``load_extra_state`` only assigns;
* :meth:`check_finite`, which stops an update that produced NaN/inf, naming the term and step;
* observation conversion and space checks with clear errors.

Idioms every agent shares live here too: :func:`batched_act` (an unbatched observation in, an
unbatched action out, so ``act`` bodies handle batches only) and :func:`validate_config` (a list
of ``(condition, message)`` checks reported together).
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobust.core.errors import CheckpointError, ConfigError, NonFiniteError, SpaceError
from rlrobust.core.seeding import numpy_generator, numpy_state, set_numpy_state, spawn_seeds, torch_generator

_Act = TypeVar("_Act", bound=Callable[..., np.ndarray])


def batched_act(act: _Act) -> _Act:
    """Decorator for ``act``: an unbatched observation runs as a batch of one and its action comes
    back unbatched (``(act_dim,)``, or a 0-d array for discrete actions).

    "Unbatched" means the observation has exactly the observation space's rank (a vector for a
    1-D ``Box``, a scalar state index for ``Discrete``). The decorated body sees batches only.
    """

    @functools.wraps(act)
    def wrapper(self: AgentBase, obs: Any, *, deterministic: bool = False) -> np.ndarray:
        if np.ndim(obs) != len(self.observation_space.shape or ()):
            return act(self, obs, deterministic=deterministic)
        batch = obs.unsqueeze(0) if isinstance(obs, torch.Tensor) else np.asarray(obs)[None]
        return np.asarray(act(self, batch, deterministic=deterministic)[0])

    return wrapper  # type: ignore[return-value]


def validate_config(agent: str, config: Any, checks: Iterable[tuple[bool, str]]) -> None:
    """Raise one :class:`ConfigError` listing every failed ``(condition, message)`` check.

    ``agent`` names the config in the message (``"invalid IQN config: kappa must be > 0; ..."``).
    """
    bad = [message for ok, message in checks if not ok]
    if bad:
        raise ConfigError(f"invalid {agent} config: {'; '.join(bad)} (got {config})")


class AgentBase:
    """Shared bookkeeping for agents; see the module docstring."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    offline: ClassVar[bool] = False
    #: services from :class:`~rlrobust.core.types.TrainingServices` the trainer must provide.
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        config: Any,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = torch.device(device)
        self.seed = int(seed)
        self.num_updates = 0
        torch_seed, numpy_seed, init_seed = spawn_seeds(seed, 3)
        #: the agent's own generators: sampling in updates (τ, noise) and exploration.
        self.generator = torch_generator(torch_seed, self.device)
        self.np_rng = numpy_generator(numpy_seed)
        # Network initialisation is seeded too (see seeded_init).
        self._init_seed = init_seed

    # ----------------------------------------------------------------- to be provided
    def networks(self) -> dict[str, nn.Module]:
        """Every module whose weights define the agent (online *and* target networks)."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer of the agent, by name (checkpointed with the networks)."""
        return {}

    def diagnostics(self, batch: Any) -> dict[str, float]:
        """Statistics too costly for every update (the trainer calls this at log steps only, on
        the last training batch, and logs them under ``train/``); none by default."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """Running statistics and other state outside networks/optimizers (tensors or numbers)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`extra_state`: assign the values. ``load_state_dict`` has already
        checked ``state`` with :meth:`extra_state_problems` (same keys, same tensor shapes)."""

    def extra_state_problems(self, state: Mapping[str, Any]) -> list[str]:
        """What keeps ``state`` from being loaded as this agent's extra state: keys missing or
        unexpected, and tensors whose shape differs from the agent's own (:meth:`extra_state`)."""
        own = self.extra_state()
        problems = [f"missing extra.{k}" for k in sorted(set(own) - set(state))]
        problems += [f"unexpected extra.{k}" for k in sorted(set(state) - set(own))]
        for key, value in own.items():
            if isinstance(value, torch.Tensor) and key in state:
                given = getattr(state[key], "shape", None)
                if given is None or tuple(given) != tuple(value.shape):
                    shape = "no tensor" if given is None else tuple(given)
                    problems.append(
                        f"wrong shape extra.{key}: checkpoint {shape} vs agent {tuple(value.shape)}"
                    )
        return problems

    # ----------------------------------------------------------------- helpers for subclasses
    @contextlib.contextmanager
    def seeded_init(self) -> Iterator[None]:
        """Build networks under this agent's seed without touching the caller's global RNG.

        Usage: ``with self.seeded_init(): self.q = mlp(...)``.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._init_seed)
            yield

    def obs_tensor(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A float32 batch ``(B, *obs_shape)`` on the agent's device (unbatched input gets B=1)."""
        t = torch.as_tensor(np.asarray(obs) if not isinstance(obs, torch.Tensor) else obs, device=self.device)
        if t.dtype != torch.float32:
            t = t.float()
        shape = self.observation_space.shape or ()
        if t.dim() == len(shape):
            t = t.unsqueeze(0)
        return t

    def index_tensor(self, x: Any) -> torch.Tensor:
        """State or action indices as a flat int64 tensor ``(B,)`` on the agent's device (tabular agents)."""
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, device=self.device)
        return t.long().reshape(-1)

    def check_finite(self, values: Mapping[str, torch.Tensor]) -> None:
        """Raise :class:`NonFiniteError` naming every non-finite term; call before ``step()``."""
        bad = [k for k, v in values.items() if not bool(torch.isfinite(v).all())]
        if bad:
            raise NonFiniteError(
                f"agent {self.name!r}: non-finite {', '.join(bad)} at update {self.num_updates + 1}; "
                "the step was not applied (check rewards/observations for NaN/inf, or lower the learning rate)"
            )

    @staticmethod
    def require_discrete_actions(agent: str, space: gym.Space[Any]) -> int:
        """The number of actions of a ``Discrete`` space; any other space raises SpaceError."""
        if not isinstance(space, gym.spaces.Discrete):
            raise SpaceError(f"agent {agent!r} needs a Discrete action space, got {space}")
        return int(space.n)

    @staticmethod
    def require_box_actions(agent: str, space: gym.Space[Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of a bounded ``Box`` action space; any other space raises SpaceError."""
        if not isinstance(space, gym.spaces.Box):
            raise SpaceError(f"agent {agent!r} needs a continuous Box action space, got {space}")
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise SpaceError(
                f"agent {agent!r} needs finite action bounds (the tanh squashing maps onto them), got {space}"
            )
        return space.low.astype(np.float32), space.high.astype(np.float32)

    @staticmethod
    def require_discrete_obs(agent: str, space: gym.Space[Any]) -> int:
        """Number of states of a Discrete observation space (tabular agents)."""
        if not isinstance(space, gym.spaces.Discrete):
            raise SpaceError(
                f"agent {agent!r} is tabular and needs a Discrete observation space "
                f"(state indices), got {space}"
            )
        return int(space.n)

    @staticmethod
    def require_vector_obs(agent: str, space: gym.Space[Any]) -> int:
        """The size of a 1-D ``Box`` observation space; any other space raises SpaceError."""
        if not isinstance(space, gym.spaces.Box) or len(space.shape or ()) != 1:
            raise SpaceError(f"agent {agent!r} needs a 1-D Box observation space (a vector), got {space}")
        return int(space.shape[0])

    # ----------------------------------------------------------------- the protocol
    def state_dict(self) -> dict[str, Any]:
        """Networks (targets included), optimizers, the update counter, RNG states and extra state."""
        return {
            "agent": self.name,
            "num_updates": self.num_updates,
            "networks": {k: m.state_dict() for k, m in self.networks().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "rng": {"torch": self.generator.get_state(), "numpy": numpy_state(self.np_rng)},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; every key or shape problem is reported before anything changes."""
        if state.get("agent", self.name) != self.name:
            raise CheckpointError(
                f"checkpoint holds agent {state.get('agent')!r}, cannot load it into agent {self.name!r}"
            )
        problems: list[str] = []
        for section, owned in (("networks", self.networks()), ("optimizers", self.optimizers())):
            given = state.get(section, {})
            for key in sorted(set(owned) - set(given)):
                problems.append(f"missing {section}.{key}")
            for key in sorted(set(given) - set(owned)):
                problems.append(f"unexpected {section}.{key}")
        for key, module in self.networks().items():
            given = state.get("networks", {}).get(key)
            if given is None:
                continue
            own = module.state_dict()
            problems += [f"missing networks.{key}.{k}" for k in sorted(set(own) - set(given))]
            problems += [f"unexpected networks.{key}.{k}" for k in sorted(set(given) - set(own))]
            problems += [
                f"wrong shape networks.{key}.{k}: checkpoint {tuple(given[k].shape)} vs agent {tuple(v.shape)}"
                for k, v in own.items()
                if k in given and tuple(given[k].shape) != tuple(v.shape)
            ]
        problems += self.extra_state_problems(state.get("extra", {}))
        if problems:
            raise CheckpointError(f"cannot load state into agent {self.name!r}: " + "; ".join(problems))
        for key, module in self.networks().items():
            module.load_state_dict(state["networks"][key])
        for key, opt in self.optimizers().items():
            # Optimizer.load_state_dict keeps the given tensors when dtype/device already match;
            # copy them so a state taken from a live agent is never shared with it.
            opt.load_state_dict(copy.deepcopy(state["optimizers"][key]))
        self.num_updates = int(state["num_updates"])
        self.generator.set_state(state["rng"]["torch"])
        set_numpy_state(self.np_rng, state["rng"]["numpy"])
        self.load_extra_state(state.get("extra", {}))
