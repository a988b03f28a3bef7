"""IWOCS: worst-case search, validity gating, the iteration schedule, the trainer hooks, bad input.

Gating, and the grid against CMA-ES on a 1-D set; the tabular checks are in
tests/unit/test_iwocs_tabular.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fakes import SERVICES, random_batch

import rlrobust
from rlrobust.agents.iwocs import gating_error
from rlrobust.agents.iwocs_search import cmaes_search, grid_search, worst_case_search
from rlrobust.core.errors import ConfigError
from rlrobust.core.logging import read_metrics
from rlrobust.core.trainer import Trainer, TrainerSettings
from rlrobust.core.types import TrainingServices
from rlrobust.envs.suites import Suite

OBS = __import__("gymnasium").spaces.Box(-1, 1, (3,), np.float32)
ACT = __import__("gymnasium").spaces.Box(-1, 1, (2,), np.float32)
SMALL = dict(
    net_arch=[16, 16],
    learning_starts=0,
    rho_candidates=[1.0],
    search="grid",
    grid_points_per_dim=3,
    eval_episodes=1,
)


# ----------------------------------------------------------------------------- search
@pytest.mark.parametrize("method", ["grid", "cmaes"])
def test_monotone_return_search_finds_the_worst_bound(method):
    lo, hi = 0.5, 3.0
    rng = np.random.default_rng(0)

    def evaluate(p):  # return falls monotonically in "mass"; noisy Monte-Carlo estimate with spread
        return 100.0 - 20.0 * p["mass"] + float(rng.normal(0, 0.5)), 0.5

    result = worst_case_search(
        evaluate, {"mass": (lo, hi)}, method, points_per_dim=10, generations=6, population=10, seed=1
    )
    assert abs(result.point["mass"] - hi) <= 0.05 * (hi - lo)
    assert result.std == 0.5 and len(result.evaluations) == (10 if method == "grid" else 60)


def test_5_grid_and_cmaes_agree_on_a_1d_set():
    def evaluate(p):  # interior minimum at x = 0.37 (normalised 0.37/2)
        return (p["x"] - 0.37) ** 2

    grid = grid_search(evaluate, {"x": (0.0, 2.0)}, points_per_dim=21)
    cma = cmaes_search(evaluate, {"x": (0.0, 2.0)}, generations=6, population=10, seed=3)
    step = 2.0 / 20
    assert abs(grid.point["x"] - cma.point["x"]) <= step
    assert abs(grid.point["x"] - 0.37) <= step / 2 and np.isnan(grid.std)


def test_search_rejects_bad_settings():
    with pytest.raises(ConfigError, match="grid|cmaes"):
        worst_case_search(lambda p: 0.0, {"x": (0, 1)}, "random")
    with pytest.raises(ConfigError, match="low < high"):
        grid_search(lambda p: 0.0, {"x": (1, 1)})


# ----------------------------------------------------------------------------- gating
def agent_with_two_models():
    agent = rlrobust.make_agent("iwocs", OBS, ACT, seed=0, **SMALL)
    agent.attach(SERVICES["iwocs"]())
    for j in (1, 2):
        agent.learners.append(agent._new_learner(j))
        agent.points.append({"a": 0.5, "b": 2.0})
        agent.rhos.append(0.5)
    with torch.no_grad():
        a, b = agent.learners[1], agent.learners[2]
        a.q_head.net[-1].bias.fill_(-100.0)  # model A: the lowest Q everywhere ...
        a.dynamics.net[-1].weight.zero_()
        a.dynamics.net[-1].bias.fill_(10.0)  # ... but predicts s' = s + 10: invalid on any real transition
        b.dynamics.net[-1].weight.zero_()
        b.dynamics.net[-1].bias.zero_()  # model B predicts s' = s exactly
    return agent


def test_4_gating_excludes_a_model_whose_dynamics_head_is_wrong():
    agent = agent_with_two_models()
    obs = np.array([[0.1, -0.2, 0.3], [0.5, 0.0, -0.4]], dtype=np.float32)
    x = torch.as_tensor(obs)
    with torch.no_grad():
        act_a = agent.learners[1].mean_action(x).numpy()
        act_b = agent.learners[2].mean_action(x).numpy()
        default = agent.learners[0].mean_action(x).numpy()
    assert not np.allclose(act_a, act_b, atol=1e-6)
    # No history yet: both valid, the min picks A (Q -100).
    np.testing.assert_allclose(agent.act(obs, deterministic=True), act_a, atol=1e-6)
    # The state did not move: A's error is 10·3 > ρ, B's is 0 ≤ ρ: B acts.
    np.testing.assert_allclose(agent.act(obs, deterministic=True), act_b, atol=1e-6)
    # Neither model explains the jump (B's error is 3·0.5 > ρ): the default policy acts.
    np.testing.assert_allclose(
        agent.act(obs + 0.5, deterministic=True),
        agent.learners[0].mean_action(torch.as_tensor(obs + 0.5)).detach().numpy(),
        atol=1e-6,
    )
    assert not np.allclose(default, act_b, atol=1e-6)
    agent.reset_memory()
    np.testing.assert_allclose(agent.act(obs, deterministic=True), act_a, atol=1e-6)


def test_acting_stats_count_who_acts_and_the_fallback():
    agent = agent_with_two_models()
    obs = np.array([[0.1, -0.2, 0.3], [0.5, 0.0, -0.4]], dtype=np.float32)
    agent.reset_acting_stats()
    agent.act(obs, deterministic=True)  # no history: A acts (both rows)
    agent.act(obs, deterministic=True)  # B acts
    agent.act(obs + 0.5, deterministic=True)  # nobody valid: the fallback acts
    stats = agent.acting_stats()
    assert stats["steps"] == 6 and stats["gated"] == 4
    assert stats["acts/m1"] == pytest.approx(1 / 3) and stats["acts/m2"] == pytest.approx(1 / 3)
    assert stats["fallback"] == pytest.approx(1 / 3) and stats["default"] == 0.0
    assert stats["valid/m1"] == 0.0 and stats["valid/m2"] == 0.5
    agent.reset_acting_stats()
    assert agent.acting_stats()["steps"] == 0


@pytest.mark.parametrize("gate_scale, opens", [("normalized", True), ("raw", False)])
def test_normalized_gate_opens_for_a_model_whose_error_is_typical_of_the_data(gate_scale, opens):
    """11-D observations whose one-step changes have a spread of 1 per dimension (Hopper-like
    units): a model that predicts "no change" is off by about 0.8 spreads per dimension. The
    normalized gate (mean over dimensions, ρ = 1) admits it; the raw L1 sum (about 8.8) does not."""
    obs_space = __import__("gymnasium").spaces.Box(-10, 10, (11,), np.float32)
    agent = rlrobust.make_agent("iwocs", obs_space, ACT, seed=0, **{**SMALL, "gate_scale": gate_scale})
    agent.attach(SERVICES["iwocs"]())
    agent.learners.append(agent._new_learner(1))
    agent.points.append({"a": 0.5, "b": 2.0})
    agent.rhos.append(1.0)
    model = agent.learners[1]
    rng = np.random.default_rng(0)
    for i in range(20):  # training batches: s' = s + N(0, 1) per dimension
        batch = random_batch(obs_space, ACT, batch_size=64, seed=i)
        delta = torch.as_tensor(rng.normal(0.0, 1.0, batch.observations.shape), dtype=torch.float32)
        model.update(dataclasses.replace(batch, next_observations=batch.observations + delta))
    np.testing.assert_allclose(model.delta_scale.numpy(), 1.0, atol=0.1)
    with torch.no_grad():
        model.dynamics.net[-1].weight.zero_()
        model.dynamics.net[-1].bias.zero_()  # predicts s' = s
    agent.reset_acting_stats()
    obs = rng.normal(0.0, 1.0, (1, 11)).astype(np.float32)
    for _ in range(50):  # a trajectory with data-typical changes
        agent.act(obs, deterministic=True)
        obs = obs + rng.normal(0.0, 1.0, obs.shape).astype(np.float32)
    stats = agent.acting_stats()
    # The normalized error is 0.8 ± 0.18 (the mean of 11 |N(0, 1)|): below ρ = 1 about 85% of the time.
    assert stats["valid/m1"] > 0.7 if opens else stats["valid/m1"] == 0.0
    assert stats["fallback"] < 0.3 if opens else stats["fallback"] > 0.9
    expected_error = 0.8 if gate_scale == "normalized" else 11 * 0.8  # E|N(0, 1)| ≈ 0.8 per dimension
    assert stats["error/m1"] == pytest.approx(expected_error, rel=0.25)


def test_gating_error_raw_and_normalized():
    predicted, observed = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    assert gating_error(predicted, observed).item() == 3.0
    assert gating_error(predicted, observed, torch.tensor([1.0, 4.0])).item() == pytest.approx(0.75)


# ----------------------------------------------------------------------------- schedule
def run_updates(agent, n, seed=0):
    return [agent.update(random_batch(OBS, ACT, batch_size=8, seed=seed + i)) for i in range(n)]


def test_iteration_schedule_search_points_and_stop(monkeypatch):
    calls = []

    def evaluate(params, episodes=5, return_std=False):  # worst at a=1, b=3 for every policy
        calls.append(dict(params))
        value = 100.0 - 10.0 * params["a"] - 5.0 * (params["b"] - 1.0)
        return (value, 2.0) if return_std else value

    suite = Suite("fake-2d", "Fake-v0", {"a": (0.0, 1.0), "b": (1.0, 3.0)})
    agent = rlrobust.make_agent(
        "iwocs", OBS, ACT, seed=0, **{**SMALL, "dr_steps": 4, "steps_per_iteration": 3, "n_iterations": 3}
    )
    agent.attach(TrainingServices(evaluate=evaluate, suite=suite))
    dr = [agent.training_params(episodes=e) for e in (0, 0, 1)]
    assert dr[0] == dr[1] != dr[2] and all(0 <= p["a"] <= 1 and 1 <= p["b"] <= 3 for p in dr)
    metrics = run_updates(agent, 4)
    assert len(calls) == 9 and agent.points == [{"a": 1.0, "b": 3.0}] and agent.replay_generation == 1
    assert agent.training_params(episodes=5) == {"a": 1.0, "b": 3.0}
    assert metrics[-1]["iwocs/worst_value"] == 80.0 and metrics[-1]["iwocs/worst_value_std"] == 2.0
    assert metrics[-1]["iwocs/param/a"] == 1.0 and metrics[-1]["iwocs/iteration"] == 1.0
    run_updates(agent, 3, seed=10)  # the same worst point again: the stopping rule
    assert agent.done and agent.stopped and len(agent.learners) == 2 and agent.history[-1]["repeated"]
    run_updates(agent, 2, seed=20)  # training continues on the last learner, no more searches
    assert len(calls) == 18 and agent.learners[1].num_updates == 5


def test_warm_up_of_a_new_learner_skips_updates_and_explores_uniformly():
    agent = rlrobust.make_agent(
        "iwocs", OBS, ACT, seed=0, **{**SMALL, "dr_steps": 2, "steps_per_iteration": 5, "learning_starts": 2}
    )
    agent.attach(SERVICES["iwocs"]())
    agent.learners[0].num_updates = 0
    run_updates(agent, 2)  # the DR learner trains (the trainer's learning_starts covered its warm-up)
    assert agent.learners[0].num_updates == 2 and len(agent.learners) == 2
    before = {k: v.clone() for k, v in agent.learners[1].actor.state_dict().items()}
    metrics = run_updates(agent, 2, seed=5)
    assert metrics[0]["iwocs/warmup"] == 1.0 and agent.learners[1].num_updates == 0
    assert all(torch.equal(v, agent.learners[1].actor.state_dict()[k]) for k, v in before.items())
    actions = agent.act(np.zeros((500, 3), np.float32))
    assert actions.min() < -0.9 and actions.max() > 0.9  # uniform over the box
    run_updates(agent, 1, seed=9)
    assert agent.learners[1].num_updates == 1


def test_resume_in_the_middle_of_an_iteration_continues_identically():
    kwargs = {**SMALL, "dr_steps": 3, "steps_per_iteration": 4, "n_iterations": 2}
    a = rlrobust.make_agent("iwocs", OBS, ACT, seed=3, **kwargs)
    a.attach(SERVICES["iwocs"]())
    run_updates(a, 5)  # DR done, one search, learner 1 in the middle of its iteration
    b = rlrobust.make_agent("iwocs", OBS, ACT, seed=99, **kwargs)
    b.attach(SERVICES["iwocs"]())
    b.load_state_dict(a.state_dict())
    assert len(b.learners) == 2 and b.points == a.points and b.phase_updates == a.phase_updates == 2
    for agent in (a, b):
        run_updates(agent, 6, seed=100)  # crosses the next search (the same worst point: it stops)
    assert len(a.history) == len(b.history) == 2 and a.history == b.history and a.done and b.done
    sa, sb = a.state_dict(), b.state_dict()
    for key, net in sa["networks"].items():
        for name, tensor in net.items():
            assert torch.equal(tensor, sb["networks"][key][name]), f"{key}.{name}"
    obs = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))


# ----------------------------------------------------------------------------- bad input
def test_attach_without_suite_or_evaluate_names_what_is_missing():
    agent = rlrobust.make_agent("iwocs", OBS, ACT, **SMALL)
    with pytest.raises(ConfigError, match="suite"):
        agent.attach(TrainingServices(evaluate=lambda p, episodes=5: 0.0))
    with pytest.raises(ConfigError, match="evaluate"):
        agent.attach(TrainingServices(suite="pendulum-1d"))


@pytest.mark.parametrize(
    "perturbation, message",
    [
        (None, "no perturbable parameters"),
        ({"kind": "random", "suite": "pendulum-1d"}, "randomising sampler"),
    ],
)
def test_trainer_refuses_an_env_iwocs_cannot_drive(tmp_path, perturbation, message):
    from rlrobust.envs import make_env

    env = make_env("Pendulum-v1")
    agent = rlrobust.make_agent("iwocs", env.observation_space, env.action_space, **SMALL)
    env.close()
    trainer = Trainer(
        agent,
        lambda: make_env("Pendulum-v1", perturbation=perturbation),
        TrainerSettings(total_steps=10, progress=False),
        tmp_path,
        suite="pendulum-1d",
    )
    with pytest.raises(ConfigError, match=message):
        trainer.run()
    no_suite = Trainer(
        agent,
        lambda: make_env("Pendulum-v1"),
        TrainerSettings(total_steps=10, progress=False),
        tmp_path / "b",
    )
    with pytest.raises(ConfigError, match="suite"):
        no_suite.run()


# ----------------------------------------------------------------------------- end to end
def test_short_training_run_switches_env_params_and_resumes(tmp_path):
    from rlrobust.envs import make_env

    pert = {"kind": "static", "suite": "pendulum-1d"}
    kwargs = {
        **SMALL,
        "dr_steps": 60,
        "steps_per_iteration": 60,
        "n_iterations": 2,
        "batch_size": 16,
        "learning_starts": 20,
    }
    env = make_env("Pendulum-v1", perturbation=pert)
    spaces = env.observation_space, env.action_space
    env.close()

    def run(interrupt_at=None):
        agent = rlrobust.make_agent("iwocs", *spaces, seed=0, **kwargs)
        if interrupt_at is not None:  # a kill once the run passed step `interrupt_at` (a checkpoint)
            update = agent.update

            def interrupted(batch):
                if trainer.step > interrupt_at:
                    raise KeyboardInterrupt
                return update(batch)

            agent.update = interrupted
        settings = TrainerSettings(
            total_steps=240,
            progress=False,
            final_eval_episodes=0,
            checkpoint_interval=120,
            log_interval=50,
        )
        trainer = Trainer(
            agent,
            lambda: make_env("Pendulum-v1", perturbation=pert),
            settings,
            tmp_path / "run",
            suite="pendulum-1d",
        )
        if interrupt_at is None:
            return trainer, trainer.run()
        with pytest.raises(KeyboardInterrupt):
            trainer.run()
        return trainer, None

    trainer, _ = run(
        interrupt_at=120
    )  # DR warm-up 20 + 60 updates, search, learner 1 (20 warm-up + 20 updates)
    agent = trainer.agent
    assert len(agent.learners) == 2 and len(agent.history) == 1
    assert trainer._training_params == agent.points[0] and trainer._replay_generation == 1
    assert 0.5 <= agent.points[0]["m"] <= 2.0
    trainer, result = run()  # resumes at 120 in the middle of iteration 1 and runs past the next search
    agent = result.agent
    assert (
        result.metrics["steps"] == 240 and len(agent.history) >= 2
    )  # 3 searches, or 2 if the stop rule fired
    assert trainer._training_params == agent.points[-1]
    # Diagnostics: every search's worst point, its value and spread, and how the searched policy acted.
    rows = [r for r in read_metrics(tmp_path / "run") if "train/iwocs/search_iteration" in r]
    by_iteration = {int(r["train/iwocs/search_iteration"]): r for r in rows}
    assert sorted(by_iteration) == list(range(len(agent.history)))
    for i, row in by_iteration.items():
        search = agent.history[i]
        assert row["train/iwocs/worst_value"] == pytest.approx(search["value"])
        assert row["train/iwocs/worst_value_std"] == pytest.approx(search["std"]) and search["std"] >= 0
        assert row["train/iwocs/param/m"] == pytest.approx(search["point"]["m"])
        assert row["train/iwocs/search_fallback"] == pytest.approx(search["acting"]["fallback"])
    assert agent.history[0]["acting"]["default"] == 1.0  # before any worst-case learner, learner 0 acts
    assert sum(
        v
        for k, v in agent.history[-1]["acting"].items()
        if k.startswith("acts/") or k in ("fallback", "default")
    ) == pytest.approx(1.0)
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "run" / "tb").iterdir())


def test_schedule_longer_than_the_run_or_a_search_box_outside_the_suite_fails_before_step_0(tmp_path):
    from rlrobust.envs import make_env

    pert = {"kind": "static", "suite": "pendulum-1d"}
    env = make_env("Pendulum-v1", perturbation=pert)
    spaces = env.observation_space, env.action_space
    env.close()

    def trainer(name, total, **kw):
        agent = rlrobust.make_agent("iwocs", *spaces, seed=0, **{**SMALL, "learning_starts": 20, **kw})
        return Trainer(
            agent,
            lambda: make_env("Pendulum-v1", perturbation=pert),
            TrainerSettings(total_steps=total, progress=False),
            tmp_path / name,
            suite="pendulum-1d",
        )

    with pytest.raises(
        ConfigError, match=r"= 20 \+ 60 \+ 2 x 60 = 200 env steps, more than total_steps = 199"
    ):
        trainer("long", 199, dr_steps=60, steps_per_iteration=60, n_iterations=2).run()
    with pytest.raises(ConfigError, match=r"m = \[0.2, 1.5\] .* suite 'pendulum-1d', m = \[0.5, 2.0\]"):
        trainer(
            "box", 200, dr_steps=60, steps_per_iteration=60, n_iterations=2, search_bounds={"m": [0.2, 1.5]}
        ).run()
    for name in ("long", "box"):
        assert (
            not (tmp_path / name / "metrics.jsonl").exists()
            and not (tmp_path / name / "checkpoints").exists()
        )
    ok = rlrobust.make_agent("iwocs", *spaces, seed=0, **{**SMALL, "search_bounds": {"m": [1.0, 2.0]}})
    ok.attach(TrainingServices(evaluate=lambda p, episodes=5: 0.0, suite="pendulum-1d", total_steps=None))
    assert ok.bounds == {"m": (1.0, 2.0)}
