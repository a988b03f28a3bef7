"""Property-based tests (hypothesis): the n-step accumulator against a direct definition, with a
checkpoint of its state at any point of the stream, and the checkpoint round trip."""

from __future__ import annotations

import pickle
import shutil
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rlrobust
from rlrobust.core import checkpoint as ckpt
from rlrobust.core.errors import CheckpointError
from rlrobust.core.replay import NStepAccumulator

# One sub-env's stream: (reward, end) per step, end = None | "terminated" | "truncated".
steps = st.lists(
    st.tuples(
        st.floats(-10, 10, allow_nan=False, width=32),
        st.sampled_from([None, None, None, "terminated", "truncated"]),
    ),
    min_size=1,
    max_size=40,
)


def reference(stream, n, gamma):
    """Each transition by definition: from step t, the rewards up to n steps ahead without
    crossing the episode's end, bootstrapping unless the episode terminated inside the window."""
    out, start = [], 0
    for end_index in [i for i, (_, end) in enumerate(stream) if end] + [None]:
        stop = len(stream) if end_index is None else end_index + 1
        for t in range(start, stop):
            last = t + n - 1
            if end_index is None and last >= stop:
                continue  # still pending when the stream ends
            last = min(last, stop - 1)
            ret, discount = 0.0, 1.0
            for r, _ in stream[t : last + 1]:
                ret += discount * float(r)
                discount *= gamma
            done = end_index is not None and last == end_index and stream[end_index][1] == "terminated"
            out.append((last, t, np.float32(ret), last + 1, np.float32(done), np.float32(discount)))
        start = stop
    return [row[1:] for row in sorted(out)]  # emitted in step order, oldest window first


def run(acc, stream, offset=0):
    rows = []
    for i, (r, end) in enumerate(stream):
        t = offset + i
        got = acc.push(
            np.array([t]),
            np.array([0]),
            np.array([r], np.float64),
            np.array([t + 1]),
            np.array([end == "terminated"]),
            np.array([end is not None]),
        )
        if got is not None:
            rows += [
                (int(o), rw, int(nx), d, g)
                for o, rw, nx, d, g in zip(
                    got["observations"],
                    got["rewards"],
                    got["next_observations"],
                    got["dones"],
                    got["discounts"],
                )
            ]
    return rows


@settings(max_examples=150, deadline=None)
@given(stream=steps, n=st.integers(1, 5), gamma=st.floats(0.5, 1.0), split=st.integers(0, 40))
def test_n_step_transitions_match_the_definition_across_a_checkpoint(stream, n, gamma, split):
    expected = reference(stream, n, gamma)
    if n == 1:  # the pass-through path stores gamma itself as the discount
        expected = [
            (t, np.float32(r), t + 1, np.float32(e == "terminated"), np.float32(gamma))
            for t, (r, e) in enumerate(stream)
        ]
    assert run(NStepAccumulator(1, n, gamma), stream) == expected
    split = min(split, len(stream))
    first = NStepAccumulator(1, n, gamma)
    rows = run(first, stream[:split])
    resumed = NStepAccumulator(1, n, gamma)
    resumed.load_state_dict(pickle.loads(pickle.dumps(first.state_dict())))  # through a checkpoint
    assert rows + run(resumed, stream[split:], offset=split) == expected


@pytest.fixture(scope="module")
def agent():
    env = gym.make("CartPole-v1")
    return rlrobust.make_agent("iqn", env.observation_space, env.action_space, net_arch=[4])


leaves = st.one_of(
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.none(),
    st.builds(np.array, st.lists(st.floats(allow_nan=False, width=32), max_size=6)),
)
trainer_states = st.dictionaries(
    st.text(min_size=1, max_size=6),
    st.recursive(
        leaves,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=10,
    ),
    max_size=5,
)


def same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b) and a.dtype == b.dtype
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=trainer_states, step=st.integers(0, 10**9))
def test_checkpoint_round_trip_returns_what_was_saved(agent, state, step):
    folder = Path(tempfile.mkdtemp())
    try:
        path = ckpt.save_checkpoint(folder, agent, step=step, trainer_state=state)
        manifest, payload = ckpt.load_payload(path)
        assert manifest["step"] == step and same(payload["trainer_state"], state)
    finally:
        shutil.rmtree(folder)


@pytest.fixture(scope="module")
def saved(agent, tmp_path_factory):
    return ckpt.save_checkpoint(tmp_path_factory.mktemp("ckpt"), agent, step=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from([ckpt.STATE_FILE, ckpt.MANIFEST_FILE]),
    where=st.floats(0, 1, exclude_max=True),
    mask=st.integers(1, 255),
)
def test_any_changed_byte_of_a_checkpoint_is_caught(saved, name, where, mask):
    original = (saved / name).read_bytes()
    data = bytearray(original)
    index = int(where * len(data))
    data[index] ^= mask
    try:
        (saved / name).write_bytes(bytes(data))
        try:
            ckpt.load_payload(saved)
        except CheckpointError as exc:
            assert name in str(exc)
        else:  # only a change JSON parses identically (whitespace to whitespace) may pass
            assert (
                name == ckpt.MANIFEST_FILE and chr(original[index]).isspace() and chr(data[index]).isspace()
            )
    finally:
        (saved / name).write_bytes(original)
