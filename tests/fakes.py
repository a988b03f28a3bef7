"""Fakes for the agent contract suite: the spaces each agent is exercised on, synthetic batches.

One entry per agent (keyed by registry name). Add your agent's line when you register it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.types import TransitionBatch

Box = gym.spaces.Box
Discrete = gym.spaces.Discrete

#: name -> (observation_space, action_space, update_cycle, config overrides for fast tests)
#: update_cycle: updates needed to touch every trainable parameter (DSAC's delayed actor: 2).
AGENT_FIXTURES: dict[str, tuple[gym.Space, gym.Space, int, dict]] = {
    "iqn": (Box(-1, 1, (4,), np.float32), Discrete(3), 1, {"net_arch": [32, 32]}),
    "dsac": (Box(-1, 1, (3,), np.float32), Box(-2, 2, (2,), np.float32), 2, {"net_arch": [32, 32]}),
    "idql": (Box(-1, 1, (3,), np.float32), Box(-1, 1, (2,), np.float32), 1, {}),
    "riql": (Box(-1, 1, (3,), np.float32), Box(-1, 1, (2,), np.float32), 1, {}),
    "iwocs": (Box(-1, 1, (3,), np.float32), Box(-1, 1, (2,), np.float32), 2, {}),
    "robust_rvi_q": (Discrete(5), Discrete(3), 1, {}),
    "dr_rpo": (Discrete(5), Discrete(3), 1, {}),
}


def random_batch(
    obs_space: gym.Space, act_space: gym.Space, batch_size: int = 16, seed: int = 0, gamma: float = 0.99
) -> TransitionBatch:
    """A synthetic batch drawn from the spaces (discrete observations stay integer indices)."""
    obs_space.seed(seed)
    act_space.seed(seed + 1)
    rng = np.random.default_rng(seed)

    def obs() -> torch.Tensor:
        x = np.stack([obs_space.sample() for _ in range(batch_size)])
        return torch.as_tensor(x, dtype=torch.float32 if isinstance(obs_space, Box) else torch.int64)

    acts = np.stack([act_space.sample() for _ in range(batch_size)])
    return TransitionBatch(
        observations=obs(),
        actions=torch.as_tensor(acts, dtype=torch.float32 if isinstance(act_space, Box) else torch.int64),
        rewards=torch.as_tensor(rng.normal(size=batch_size), dtype=torch.float32),
        next_observations=obs(),
        dones=torch.as_tensor(rng.random(batch_size) < 0.1, dtype=torch.float32),
        discounts=torch.full((batch_size,), gamma, dtype=torch.float32),
    )


# ---------------------------------------------------------------- training services (IWOCS)
def _iwocs_services():
    """A cheap fake evaluator (a smooth return surface, worst at a=1, b=3) and a 2-D fake suite."""
    from rlrobust.core.types import TrainingServices
    from rlrobust.envs.suites import Suite

    def evaluate(params, episodes=5, return_std=False):
        value = 100.0 - 10.0 * params["a"] - 5.0 * (params["b"] - 1.0)
        return (value, 1.0) if return_std else value

    return TrainingServices(
        evaluate=evaluate, suite=Suite("fake-2d", "Fake-v0", {"a": (0.0, 1.0), "b": (1.0, 3.0)})
    )


def _tabular_services():
    """A known Garnet(5, 3) model and its generative model (robust RVI Q-learning's MLMC)."""
    from rlrobust.core.types import TrainingServices
    from rlrobust.envs.tabular import garnet

    env = garnet(5, 3, 2, seed=0)
    return TrainingServices(model=env.tabular_model(), generative_model=env.generative_model())


#: name -> factory of the TrainingServices the contract suite attaches before exercising the agent.
SERVICES = {"iwocs": _iwocs_services, "robust_rvi_q": _tabular_services}


# ---------------------------------------------------------------- helpers shared by agent tests
def build_agent(name: str, seed: int = 0):
    """The agent ``name`` on its fixture spaces, with its fake services attached."""
    import rlrobust

    obs_space, act_space, _, overrides = AGENT_FIXTURES[name]
    agent = rlrobust.make_agent(name, obs_space, act_space, seed=seed, **overrides)
    if name in SERVICES:
        agent.attach(SERVICES[name]())
    return agent


def run_updates(agent, name: str, n: int, seed: int = 0) -> list[dict[str, float]]:
    """``n`` updates on the synthetic batches ``random_batch(seed + i)``."""
    obs_space, act_space, _, _ = AGENT_FIXTURES[name]
    return [agent.update(random_batch(obs_space, act_space, seed=seed + i)) for i in range(n)]


def flat_tensors(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested state dict, keyed by its path."""
    out = {}
    if isinstance(state, torch.Tensor):
        out[prefix] = state
    elif isinstance(state, dict):
        for k, v in state.items():
            out.update(flat_tensors(v, f"{prefix}/{k}"))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            out.update(flat_tensors(v, f"{prefix}/{i}"))
    return out


def pd_controller(obs: np.ndarray) -> np.ndarray:
    """A PD controller for Pendulum-v1 (obs ``[cos θ, sin θ, θ̇]``): ``u = clip(−10·θ − 2·θ̇, ±2)``."""
    theta = np.arctan2(obs[1], obs[0])
    return np.clip(np.array([-10.0 * theta - 2.0 * obs[2]], dtype=np.float32), -2.0, 2.0)


def record_pd_dataset(
    dataset_id: str = "test/pendulum/pd-v0", episodes: int = 2, max_steps: int = 50, overwrite: bool = False
):
    """A small offline dataset recorded from :func:`pd_controller` on Pendulum-v1 (no reference scores)."""
    from rlrobust.data import record_dataset

    return record_dataset(
        pd_controller,
        gym.make("Pendulum-v1", max_episode_steps=max_steps),
        dataset_id=dataset_id,
        episodes=episodes,
        seed=0,
        overwrite=overwrite,
    )
