"""Hydra configuration: every agent config composes and builds; names agree with the
registry; typos and unknown options fail with the valid choices listed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import rlrobust
from rlrobust.core.errors import ConfigError, UnknownAgentError
from rlrobust.core.registry import get_agent_class
from rlrobust.core.runner import agent_hyperparameters, compose_train_config, config_options

ROOT = Path(__file__).resolve().parents[2]
AGENT_YAMLS = sorted((ROOT / "conf" / "agent").glob("*.yaml"))


def test_i2_agent_configs_and_registry_agree():
    stems = {p.stem for p in AGENT_YAMLS}
    assert stems == set(rlrobust.list_agents()), (
        f"conf/agent: {sorted(stems)}; registry: {rlrobust.list_agents()}"
    )


@pytest.mark.parametrize("path", AGENT_YAMLS, ids=lambda p: p.stem)
def test_i5_yaml_keys_equal_config_fields(path):
    data = yaml.safe_load(path.read_text())
    assert data.pop("name") == path.stem
    fields = {f.name for f in dataclasses.fields(get_agent_class(path.stem).Config)}
    assert set(data) == fields, f"only in yaml: {set(data) - fields}; only in Config: {fields - set(data)}"


@pytest.mark.parametrize("path", AGENT_YAMLS, ids=lambda p: p.stem)
def test_i5_yaml_values_equal_config_defaults(path):
    # The dataclass is the one source of every default; conf/agent/<name>.yaml repeats them so
    # that each value sits next to its paper citation (and shows in --help). They must agree
    # value for value, or a Python user (Config()) and a CLI user would train different agents.
    data = yaml.safe_load(path.read_text())
    data.pop("name")
    defaults = dataclasses.asdict(get_agent_class(path.stem).Config())
    differ = {
        k: (data[k], defaults[k])
        for k in sorted(data.keys() & defaults.keys())
        if not _same(data[k], defaults[k])
    }
    assert not differ, f"{path.name} vs {path.stem}'s Config defaults, key: (yaml, dataclass): {differ}"


def _same(a, b) -> bool:
    """Equal values, where YAML's int/float and list spellings count as the dataclass's."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("name", rlrobust.list_agents())
def test_i1_every_agent_config_composes_and_builds(name):
    cfg = compose_train_config(agent=name)
    assert cfg.agent.name == name
    cls = get_agent_class(name)
    config = cls.Config(**agent_hyperparameters(cfg.agent))
    composed = agent_hyperparameters(cfg.agent)
    assert {k: v for k, v in dataclasses.asdict(config).items()} == composed


def test_i3_unknown_agent_lists_valid_names():
    with pytest.raises(UnknownAgentError) as info:
        compose_train_config(agent="nosuch")
    for name in rlrobust.list_agents():
        assert name in str(info.value)


def test_i4_typo_in_hyperparameter_or_option_fails_listing_valid_keys():
    with pytest.raises(ConfigError, match="learning_rate"):
        compose_train_config(agent="iqn", agent_kwargs={"learning_rat": 1e-3})
    with pytest.raises(ConfigError, match="num_envs"):
        compose_train_config(agent="iqn", trainer_options={"num_env": 2})


def test_config_groups_are_listed():
    assert "cartpole" in config_options("env")
    assert "none" in config_options("perturbation")


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_i3_i4_cli_errors(tmp_path):
    out = run_cli("agent=nosuch", cwd=tmp_path)
    assert out.returncode != 0 and "Available options in 'agent'" in out.stderr and "iqn" in out.stderr
    out = run_cli("agent.lrr=1", cwd=tmp_path)
    assert out.returncode != 0 and "lrr" in out.stderr


OFFLINE_SMOKE = [
    "env=pendulum",
    "total_steps=20",
    "dataset.id=smoke/pendulum/random-v0",
    "agent.batch_size=32",
]

# Tiny overrides per agent for the CLI smoke run. A newly registered agent must add its line.
SMOKE = {
    "idql": OFFLINE_SMOKE + ["agent.num_samples=4", "agent.score_width=32", "agent.score_blocks=1"],
    "riql": OFFLINE_SMOKE + ["agent.net_arch=[16,16]"],
    "robust_rvi_q": ["env=garnet", "total_steps=300", "agent.kernel_set=kl"],
    "dr_rpo": ["env=garnet", "env.max_episode_steps=10", "agent.horizon=10", "total_steps=200"],
    "iqn": ["env=cartpole", "total_steps=300", "agent.learning_starts=100", "agent.net_arch=[16,16]"],
    "dsac": ["env=pendulum", "total_steps=300", "agent.learning_starts=100", "agent.net_arch=[16,16]"],
    "iwocs": [
        "env=pendulum",
        "total_steps=300",
        "perturbation.kind=static",
        "+perturbation.suite=pendulum-1d",
        "evaluation.suite=pendulum-1d",
        "evaluation.workers=1",
        "evaluation.points_per_dim=2",
        "evaluation.episodes=1",
        "agent.learning_starts=50",
        "agent.dr_steps=100",
        "agent.steps_per_iteration=100",
        "agent.n_iterations=1",
        "agent.search=grid",
        "agent.grid_points_per_dim=2",
        "agent.eval_episodes=1",
        "agent.net_arch=[16,16]",
        "agent.rho_candidates=[1.0]",
    ],
}


@pytest.mark.parametrize("name", rlrobust.list_agents())
def test_i6_train_script_smoke(name, tmp_path):
    if name not in SMOKE:
        pytest.fail(f"add a CLI smoke entry for agent {name!r} to SMOKE")
    if any(o.startswith("dataset.id=") for o in SMOKE[name]):
        from rlrobust.data import record_dataset

        # a tiny dataset recorded here (tests never download); MINARI_DATASETS_PATH is a temp dir
        record_dataset(
            lambda obs: np.zeros(1, np.float32),
            "Pendulum-v1",
            dataset_id="smoke/pendulum/random-v0",
            episodes=2,
            seed=0,
        )
    run_dir = tmp_path / "run"
    out = run_cli(
        f"agent={name}",
        *SMOKE[name],
        f"run_dir={run_dir}",
        "trainer.progress=false",
        "trainer.final_eval_episodes=1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run_dir / "config.yaml").exists() and (run_dir / "final_evaluation.json").exists()
    assert list((run_dir / "checkpoints").glob("step_*/manifest.json"))
    assert list((run_dir / "tb").glob("events.*"))


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_and_names_a_registered_agent(experiment):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="rlrobust.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}"])
    assert cfg.agent.name in rlrobust.list_agents()
    get_agent_class(cfg.agent.name).Config(**agent_hyperparameters(cfg.agent))
    if experiment == "quickstart":  # the README's main job: small IQN + a perturbed-suite evaluation
        assert cfg.agent.name == "iqn" and cfg.evaluation.suite == "cartpole-2d" and cfg.total_steps <= 50_000
