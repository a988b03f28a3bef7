"""The agent contract suite (construction, acting, updates, gradients, save/load, determinism),
run on every registered agent: a new agent is covered the moment it registers."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from fakes import AGENT_FIXTURES, flat_tensors, random_batch, run_updates
from fakes import build_agent as build

import rlrobust
from rlrobust.core.checkpoint import load_agent, save_checkpoint
from rlrobust.core.errors import CheckpointError, NonFiniteError, RlrobustError
from rlrobust.core.interfaces import Agent

AGENTS = rlrobust.list_agents()


def observations(name: str, n: int = 100, seed: int = 123) -> np.ndarray:
    space = AGENT_FIXTURES[name][0]
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)])


def assert_states_equal(a, b):
    ta, tb = flat_tensors(a), flat_tensors(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), f"tensor {key} differs"


@pytest.mark.parametrize("name", AGENTS)
def test_a1_construct_and_protocol(name):
    agent = build(name)
    assert isinstance(agent, Agent)
    assert agent.name == name
    assert isinstance(agent.offline, bool)


@pytest.mark.parametrize("name", AGENTS)
def test_a2_act_shapes_and_determinism(name):
    agent = build(name)
    _, act_space, _, _ = AGENT_FIXTURES[name]
    obs = observations(name, 7)
    actions = agent.act(obs, deterministic=True)
    assert actions.shape == (7, *act_space.shape)
    assert all(act_space.contains(np.asarray(a, dtype=act_space.dtype)) for a in actions)
    np.testing.assert_array_equal(actions, agent.act(obs, deterministic=True))
    stochastic = agent.act(obs, deterministic=False)
    assert stochastic.shape == (7, *act_space.shape)
    single = agent.act(obs[0], deterministic=True)  # unbatched in, unbatched out (like SB3's predict)
    assert single.shape == tuple(act_space.shape)
    # CPU matmul kernels differ below ~8 rows (~1e-8 rounding): equal to 1e-6, not bitwise
    np.testing.assert_allclose(single, actions[0], atol=1e-6)


@pytest.mark.parametrize("name", AGENTS)
def test_a3_update_returns_finite_named_floats(name):
    agent = build(name)
    before = agent.num_updates
    metrics = run_updates(agent, name, 1)[0]
    assert metrics and all(isinstance(k, str) for k in metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values()), metrics
    assert agent.num_updates == before + 1


@pytest.mark.parametrize("name", AGENTS)
def test_a4_one_update_cycle_moves_every_trainable_parameter(name):
    agent = build(name)
    cycle = AGENT_FIXTURES[name][2]
    optimizers = agent.optimizers()
    if not optimizers:
        pytest.skip(f"{name} has no gradient-trained parameters (tabular agent); covered by its own tests")
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = 0.05
    trainable = {
        f"{net}.{pname}": p.detach().clone()
        for net, module in agent.networks().items()
        for pname, p in module.named_parameters()
        if p.requires_grad
    }
    run_updates(agent, name, cycle)
    after = {
        f"{net}.{pname}": p
        for net, module in agent.networks().items()
        for pname, p in module.named_parameters()
    }
    unchanged = [k for k, v in trainable.items() if torch.equal(v, after[k])]
    assert not unchanged, f"parameters not updated in one cycle: {unchanged}"


@pytest.mark.parametrize("name", AGENTS)
def test_a5_target_networks_get_no_gradients(name):
    agent = build(name)
    run_updates(agent, name, AGENT_FIXTURES[name][2])
    for net, module in agent.networks().items():
        if "target" in net or "ema" in net:
            for pname, p in module.named_parameters():
                assert not p.requires_grad, f"{net}.{pname} is trainable"
                assert p.grad is None or not p.grad.any(), f"{net}.{pname} received a gradient"


@pytest.mark.parametrize("name", AGENTS)
def test_a6_save_load_round_trip_is_exact(name):
    agent = build(name)
    run_updates(agent, name, 5)
    fresh = build(name, seed=99)
    fresh.load_state_dict(agent.state_dict())
    assert_states_equal(agent.state_dict(), fresh.state_dict())
    obs = observations(name)
    np.testing.assert_allclose(
        agent.act(obs, deterministic=True), fresh.act(obs, deterministic=True), atol=1e-6
    )
    # The resumed copy continues exactly like the original (RNG states and optimizers included).
    run_updates(agent, name, 10, seed=500)
    run_updates(fresh, name, 10, seed=500)
    assert_states_equal(agent.state_dict(), fresh.state_dict())


@pytest.mark.parametrize("name", AGENTS)
def test_a7_checkpoint_loads_in_a_new_process(name, tmp_path):
    agent = build(name)
    run_updates(agent, name, 20)
    path = save_checkpoint(tmp_path / "ckpt", agent, step=20)
    obs = observations(name, 20)
    np.save(tmp_path / "obs.npy", obs)
    code = textwrap.dedent(f"""
        import json, numpy as np, torch
        torch.set_num_threads(1)
        from rlrobust.core.checkpoint import load_agent
        agent = load_agent({str(path)!r})
        obs = np.load({str(tmp_path / "obs.npy")!r}, allow_pickle=True)
        print(json.dumps(np.asarray(agent.act(obs, deterministic=True), dtype=float).tolist()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(
        np.asarray(json.loads(out.stdout.strip().splitlines()[-1])),
        agent.act(obs, deterministic=True).astype(float),
        atol=1e-6,
    )


@pytest.mark.parametrize("name", AGENTS)
def test_a8_bad_state_dict_raises_listing_keys_and_leaves_agent_unchanged(name):
    agent = build(name)
    original = agent.state_dict()
    state = agent.state_dict()
    net_name = next(iter(state["networks"]))
    net_state = dict(state["networks"][net_name])
    param_name = next(iter(net_state))
    tensor = net_state.pop(param_name)
    net_state["not_a_parameter"] = tensor
    broken = {**state, "networks": {**state["networks"], net_name: net_state}}
    with pytest.raises(CheckpointError) as info:
        agent.load_state_dict(broken)
    assert param_name in str(info.value) and "not_a_parameter" in str(info.value)
    wrong_shape = {
        **state,
        "networks": {
            **state["networks"],
            net_name: {**state["networks"][net_name], param_name: torch.zeros(*tensor.shape, 3)},
        },
    }
    with pytest.raises(CheckpointError, match="shape"):
        agent.load_state_dict(wrong_shape)
    assert_states_equal(original, agent.state_dict())


@pytest.mark.parametrize("name", AGENTS)
def test_a8_bad_extra_state_is_refused_before_anything_changes(name):
    # AgentBase checks the extra state (keys, tensor shapes) with the networks, before loading
    # anything: load_extra_state only assigns.
    agent = build(name)
    original = agent.state_dict()
    donor = build(name, seed=1)
    run_updates(donor, name, 2)
    state = donor.state_dict()
    extra = dict(state["extra"])
    assert extra, f"{name} has no extra state to break"
    dropped = sorted(extra)[0]
    extra.pop(dropped)
    extra["bogus"] = 1
    with pytest.raises(CheckpointError) as info:
        agent.load_state_dict({**state, "extra": extra})
    assert f"missing extra.{dropped}" in str(info.value) and "unexpected extra.bogus" in str(info.value)
    tensors = [k for k, v in state["extra"].items() if isinstance(v, torch.Tensor)]
    if tensors:
        wrong = {**state["extra"], tensors[0]: torch.zeros(*state["extra"][tensors[0]].shape, 2)}
        with pytest.raises(CheckpointError, match=f"wrong shape extra.{tensors[0]}"):
            agent.load_state_dict({**state, "extra": wrong})
    assert_states_equal(original, agent.state_dict())
    assert agent.num_updates == 0


@pytest.mark.parametrize("name", AGENTS)
def test_a9_checkpoint_of_another_agent_is_refused(name, tmp_path):
    other_name = next(n for n in AGENTS if n != name) if len(AGENTS) > 1 else None
    agent = build(name)
    path = save_checkpoint(tmp_path, agent, step=0)
    with pytest.raises(CheckpointError) as info:
        load_agent(path, expected_agent="someone_else")
    assert name in str(info.value) and "someone_else" in str(info.value)
    if other_name is not None:
        other = build(other_name)
        with pytest.raises(CheckpointError) as info:
            agent.load_state_dict(other.state_dict())
        assert name in str(info.value) and other_name in str(info.value)


@pytest.mark.parametrize("name", AGENTS)
def test_d1_d2_same_seed_same_run_other_seed_differs(name):
    a, b, c = build(name, seed=7), build(name, seed=7), build(name, seed=8)
    for agent in (a, b, c):
        run_updates(agent, name, 30)
    assert_states_equal(a.state_dict()["networks"], b.state_dict()["networks"])
    obs = observations(name, 50)
    np.testing.assert_array_equal(a.act(obs), b.act(obs))  # exploration draws identical too
    ta, tc = flat_tensors(a.state_dict()["networks"]), flat_tensors(c.state_dict()["networks"])
    assert any(not torch.equal(ta[k], tc[k]) for k in ta), "different seeds gave identical parameters"


@pytest.mark.parametrize("name", AGENTS)
def test_j1_nan_reward_raises_and_leaves_parameters_unchanged(name):
    agent = build(name)
    run_updates(agent, name, 2)
    before = agent.state_dict()
    before = {"networks": copy.deepcopy(before["networks"]), "num_updates": before["num_updates"]}
    obs_space, act_space, _, _ = AGENT_FIXTURES[name]
    batch = random_batch(obs_space, act_space, seed=42)
    batch.rewards[3] = float("nan")
    with pytest.raises(NonFiniteError) as info:
        agent.update(batch)
    message = str(info.value)
    assert "loss" in message and "update 3" in message, message  # names the term and the step
    assert agent.num_updates == before["num_updates"]
    assert_states_equal(before["networks"], agent.state_dict()["networks"])


def test_every_registered_agent_has_a_fixture_and_errors_subclass_base():
    assert set(AGENTS) <= set(AGENT_FIXTURES), set(AGENTS) - set(AGENT_FIXTURES)
    with pytest.raises(rlrobust.UnknownAgentError) as info:
        rlrobust.make_agent("nosuch", None, None)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RlrobustError)
    for valid in AGENTS:
        assert valid in str(info.value)
