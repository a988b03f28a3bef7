"""SB3 trains inside a domain-randomized env as it is (spaces unchanged, no Tuple actions)."""

from __future__ import annotations

import numpy as np

from rlrobust.envs import make_env


def test_sb3_sac_trains_a_few_hundred_steps_under_domain_randomization():
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    class Masses(BaseCallback):
        def __init__(self):
            super().__init__()
            self.seen: set[float] = set()

        def _on_step(self) -> bool:
            self.seen |= {info["params"]["m"] for info in self.locals["infos"]}
            return True

    env = make_env("Pendulum-v1", {"kind": "random", "suite": "pendulum-1d"}, max_episode_steps=50)
    model = SAC(
        "MlpPolicy",
        env,
        learning_starts=100,
        batch_size=32,
        buffer_size=1000,
        seed=0,
        policy_kwargs={"net_arch": [16, 16]},
        device="cpu",
    )
    callback = Masses()
    model.learn(300, callback=callback)
    assert model.num_timesteps == 300
    assert len(callback.seen) == 6  # 300 steps / 50 = 6 episodes, a fresh mass each
    assert all(0.5 <= m <= 2.0 for m in callback.seen)
    action, _ = model.predict(np.zeros(3, np.float32), deterministic=True)
    assert np.all(np.isfinite(action))
