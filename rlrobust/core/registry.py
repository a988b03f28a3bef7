"""Agent registry: name → class, imported lazily.

Agents are imported on first use so that ``import rlrobust`` stays cheap and a broken or
heavy agent module never slows down (or breaks) the others.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from rlrobust.core.errors import ConfigError, UnknownAgentError, choices

# name -> "module:Class". One line per agent; keep in sync with conf/agent/<name>.yaml.
_AGENTS: dict[str, str] = {
    "iqn": "rlrobust.agents.iqn:IQN",
    "dsac": "rlrobust.agents.dsac:DSAC",
    "idql": "rlrobust.agents.idql:IDQL",
    "riql": "rlrobust.agents.riql:RIQL",
    "iwocs": "rlrobust.agents.iwocs:IWOCS",
    "robust_rvi_q": "rlrobust.agents.robust_rvi_q:RobustRVIQ",
    "dr_rpo": "rlrobust.agents.dr_rpo:DRRPO",
}


def register(name: str, target: str) -> None:
    """Register an agent class given as ``"package.module:Class"`` (for third-party agents)."""
    _AGENTS[name] = target


def list_agents() -> list[str]:
    """Registered agent names, sorted."""
    return sorted(_AGENTS)


def get_agent_class(name: str) -> type[Any]:
    """The agent class registered as ``name``; :class:`UnknownAgentError` lists valid names."""
    if name not in _AGENTS:
        raise UnknownAgentError(f"unknown agent {name!r}; registered agents are {choices(_AGENTS)}")
    module_name, class_name = _AGENTS[name].split(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def build_config(config_cls: type, overrides: Mapping[str, Any] | None = None, *, agent: str = "") -> Any:
    """Instantiate an agent's ``Config`` dataclass, rejecting unknown keys by name."""
    overrides = dict(overrides or {})
    valid = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(overrides) - valid
    if unknown:
        who = f"agent {agent!r}" if agent else config_cls.__name__
        raise ConfigError(f"unknown hyperparameter(s) {choices(unknown)} for {who}; valid: {choices(valid)}")
    for key, value in overrides.items():
        # Hydra hands lists as ListConfig; dataclass fields want plain containers.
        if hasattr(value, "_content"):
            from omegaconf import OmegaConf

            overrides[key] = OmegaConf.to_container(value, resolve=True)
    return config_cls(**overrides)


def make_agent(
    name: str,
    observation_space: Any,
    action_space: Any,
    *,
    device: str = "cpu",
    seed: int = 0,
    **config: Any,
) -> Any:
    """Build a registered agent from its name and hyperparameter overrides.

    Raises:
        UnknownAgentError: ``name`` is not registered (the message lists registered names).
        ConfigError: an override is not a field of the agent's ``Config``.
    """
    cls = get_agent_class(name)
    cfg = build_config(cls.Config, config, agent=name)
    return cls(cfg, observation_space, action_space, device=device, seed=seed)
