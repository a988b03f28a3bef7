"""From a Hydra config to a finished run: the one code path behind ``scripts/train.py`` and
:func:`rlrobust.train` (:func:`train`, here).

``compose_train_config`` builds the config from ``conf/train.yaml`` (shipped as the package
``rlrobust.conf``) with the same validation as the CLI: struct mode rejects a typo'd key, and
an unknown group option lists the available ones. ``run_from_config`` builds env, agent and
dataset from it, trains, and optionally evaluates on a perturbation suite.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from rlrobust.core.checkpoint import dataset_fingerprint, list_checkpoints, read_manifest
from rlrobust.core.errors import (
    CheckpointError,
    ConfigError,
    UnknownAgentError,
    choices,
    describe_differences,
)
from rlrobust.core.registry import list_agents, make_agent
from rlrobust.core.runlock import hold_run_dir
from rlrobust.core.trackers import make_tracker, report_files
from rlrobust.core.trainer import Trainer, TrainResult, check_resumable_agent, settings_from

CONFIG_MODULE = "rlrobust.conf"


def config_options(group: str) -> list[str]:
    """Option names of a config group (``agent``, ``env``, ``perturbation``, ``dataset``)."""
    folder = Path(__file__).resolve().parents[2] / "conf" / group
    if not folder.is_dir():  # installed wheel: conf lives inside the package
        import rlrobust.conf

        folder = Path(rlrobust.conf.__file__).parent / group
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _set_checked(node: DictConfig, key: str, value: Any, what: str) -> None:
    """Set ``node[key]`` in struct mode; an unknown key raises ConfigError listing valid keys."""
    try:
        OmegaConf.update(node, key, value, merge=False)
    except (ConfigAttributeError, ConfigKeyError) as exc:
        raise ConfigError(f"unknown {what} {key!r}; valid: {choices(node.keys())}") from exc


def compose_train_config(
    *,
    agent: str,
    env: str | None = None,
    perturbation: str | Mapping[str, Any] | None = None,
    dataset: str | None = None,
    agent_kwargs: Mapping[str, Any] | None = None,
    trainer_options: Mapping[str, Any] | None = None,
    suite: str | None = None,
    logger: str | Mapping[str, Any] | None = None,
    top_level: Mapping[str, Any] | None = None,
) -> DictConfig:
    """Compose ``conf/train.yaml`` with the given choices and overrides (see module docstring)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if agent not in list_agents():
        raise UnknownAgentError(f"unknown agent {agent!r}; registered agents are {choices(list_agents())}")
    overrides = [f"agent={agent}"]
    env_is_option = env is not None and env in config_options("env")
    if env_is_option:
        overrides.append(f"env={env}")
    if isinstance(perturbation, str):
        overrides.append(f"perturbation={perturbation}")
    logger_options = dict(logger) if isinstance(logger, Mapping) else {}
    logger_name = logger if isinstance(logger, str) else logger_options.pop("name", None)
    if logger_name is not None:
        if logger_name not in config_options("logger"):
            raise ConfigError(f"unknown logger {logger_name!r}; valid: {choices(config_options('logger'))}")
        overrides.append(f"logger={logger_name}")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    if env is not None and not env_is_option:
        cfg.env.id = env  # a raw gymnasium id
    if isinstance(perturbation, Mapping):
        OmegaConf.set_struct(cfg, False)
        cfg.perturbation = OmegaConf.create(dict(perturbation))
        OmegaConf.set_struct(cfg, True)
    if dataset is not None:
        cfg.dataset.id = dataset
    if suite is not None:
        cfg.evaluation.suite = suite
    for key, value in (agent_kwargs or {}).items():
        _set_checked(cfg.agent, key, value, f"hyperparameter of agent {agent!r}")
    for key, value in logger_options.items():
        _set_checked(cfg.logger, key, value, f"option of logger {logger_name!r}")
    for key, value in (trainer_options or {}).items():
        _set_checked(cfg.trainer, key, value, "trainer option")
    for key, value in (top_level or {}).items():
        _set_checked(cfg, key, value, "config key")
    return cfg


def plain_dict(node: Mapping[str, Any]) -> dict[str, Any]:
    """A config node (a ``DictConfig`` or any mapping) as a plain dict, interpolations resolved."""
    if isinstance(node, DictConfig):
        return cast(dict[str, Any], OmegaConf.to_container(node, resolve=True))
    return dict(node)


def plain_value(value: Any) -> Any:
    """``value`` with any config node in it turned into plain containers (other values as they are)."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def agent_hyperparameters(agent_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``agent:`` node without its ``name``, as plain containers."""
    plain = plain_dict(agent_cfg)
    plain.pop("name", None)
    return plain


def make_env_factory(env: Any, perturbation: Any = None) -> Callable[[], gym.Env]:
    """A factory of fresh envs from an env config node, a gymnasium id, an Env or a factory."""
    if isinstance(env, gym.Env):
        used = [False]

        def single() -> gym.Env:
            if used[0]:
                raise ConfigError(
                    "an Env instance can be used for one sub-env only; pass a factory or an id "
                    "for num_envs > 1 and for evaluation envs"
                )
            used[0] = True
            return env

        return single
    if callable(env) and not isinstance(env, (str, Mapping, DictConfig)):
        return cast(Callable[[], gym.Env], env)
    spec: dict[str, Any] = {"id": env} if isinstance(env, str) else plain_dict(env)
    pert = plain_value(perturbation)
    env_id = spec["id"]
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("max_episode_steps"):
        kwargs["max_episode_steps"] = int(spec["max_episode_steps"])

    def factory() -> gym.Env:
        from rlrobust.envs import make_env

        made: gym.Env = make_env(env_id, perturbation=pert, **kwargs)
        return made

    return factory


def batched_env_factory(
    env: Any, perturbation: Any, device: str
) -> Callable[[int], gym.vector.VectorEnv] | None:
    """``num_envs -> VectorEnv`` of batched worlds when the env config says ``backend: warp``
    (MuJoCo Warp on ``device``, the agent's; the perturbation's parameters per world), else None."""
    spec = plain_value(env)
    backend = spec.get("backend", "cpu") if isinstance(spec, Mapping) else "cpu"
    if backend == "cpu":
        return None
    if backend != "warp":
        raise ConfigError(f"unknown env backend {backend!r}; valid: 'cpu', 'warp'")
    from rlrobust.envs.batched.warp_env import HostArrays, from_perturbation, import_warp

    import_warp()  # fail now, naming the extra, rather than after the agent is built
    pert = plain_value(perturbation)
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("max_episode_steps"):
        kwargs["max_episode_steps"] = int(spec["max_episode_steps"])
    return lambda num_envs: HostArrays(from_perturbation(spec["id"], num_envs, pert, device=device, **kwargs))


def default_run_dir(agent: str, env_name: str, seed: int) -> Path:
    """``runs/<agent>-<env>-seed<seed>-<time with microseconds>-<pid>``: never collides."""
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"{time.time() % 1:.6f}"[1:].replace(".", "-")
    return Path("runs") / f"{agent}-{env_name}-seed{seed}-{stamp}-{os.getpid()}"


def recovered_env(dataset: Any) -> dict[str, Any] | None:
    """The env config (``id``, ``kwargs``, ``max_episode_steps``) a dataset was recorded in, from
    the gymnasium spec in its metadata (the evaluation spec when it has one), or None."""
    meta = getattr(dataset, "metadata", None) or {}
    spec_json = meta.get("eval_env_spec") or meta.get("env_spec")
    if not spec_json:
        return None
    spec = gym.envs.registration.EnvSpec.from_json(spec_json) if isinstance(spec_json, str) else spec_json
    return {"id": spec.id, "kwargs": dict(spec.kwargs or {}), "max_episode_steps": spec.max_episode_steps}


def run_from_config(
    cfg: DictConfig,
    *,
    agent: Any = None,
    env: Any = None,
    dataset: Any = None,
    run_dir: str | Path | None = None,
    env_from_dataset: bool = False,
) -> TrainResult:
    """Build everything a composed config names and train (then evaluate on the suite, if any).

    With ``env_from_dataset`` (the env was not chosen explicitly) an offline run evaluates in the
    environment recovered from the dataset's metadata, when it records one.
    """
    settings = settings_from(
        {
            **plain_dict(cfg.trainer),
            "total_steps": cfg.total_steps,
            "seed": cfg.seed,
        }
    )
    # Everything checkable without building anything is checked first (steps, intervals, suite).
    settings.validate()
    eval_suite = _checked_suite(cfg)
    if dataset is None and cfg.dataset.get("id"):
        from rlrobust.data import dataset_from_config

        dataset = dataset_from_config(plain_dict(cfg.dataset))
    recovered = recovered_env(dataset) if env is None and dataset is not None and env_from_dataset else None
    if recovered is not None:
        cfg.env = OmegaConf.create(recovered)
    if eval_suite is not None and (env is None or isinstance(env, str)):
        eval_suite.check_env(str(env or cfg.env.id))  # before training, not after it
    env_name = Path(str(cfg.env.id)).name if env is None or isinstance(env, str) else "custom"
    agent_name = agent.name if agent is not None else cfg.agent.name
    run_dir = Path(run_dir or cfg.get("run_dir") or default_run_dir(agent_name, env_name, cfg.seed))
    identity = run_identity(cfg, env_is_object=env_name == "custom", dataset=dataset)
    with hold_run_dir(run_dir):  # one writer per run dir, before anything is written there
        return _build_and_run(
            cfg, settings, run_dir, agent=agent, env=env, dataset=dataset, identity=identity
        )


#: the key of a checkpoint manifest's run config that holds :func:`run_identity`
IDENTITY_KEY = "run_identity"


def run_identity(cfg: DictConfig, *, env_is_object: bool, dataset: Any) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: the seed its RNG states came from,
    the task (env id, kwargs and backend; the perturbation) and, offline, the data (its
    fingerprint). Budgets, intervals, logging and evaluation may change on resume.

    Spelling does not count: ``"hopper"`` (a conf option) and ``"Hopper-v5"`` (a raw id) are the
    same env; an env passed as an object or factory is recorded as ``"custom"`` (not checked).
    """
    env = plain_dict(cfg.env)
    pert = cfg.get("perturbation")
    identity = {
        "seed": int(cfg.seed),
        "env": "custom"
        if env_is_object
        else {
            "id": str(env["id"]),
            "kwargs": env.get("kwargs") or {},
            "backend": env.get("backend") or "cpu",
        },
        "perturbation": plain_dict(pert) if isinstance(pert, (DictConfig, Mapping)) else pert,
        "dataset": None if dataset is None or isinstance(dataset, str) else dataset_fingerprint(dataset),
    }
    # The form a manifest stores (JSON), so that a saved and a current identity compare equal.
    return cast(dict[str, Any], json.loads(json.dumps(identity, sort_keys=True, default=str)))


def check_same_run(run_dir: Path, identity: dict[str, Any], agent: Any) -> None:
    """Refuse to resume ``run_dir`` when its newest readable checkpoint was trained on another
    task, seed or dataset than ``identity`` (:func:`run_identity`) describes, or by another agent
    or hyperparameters than ``agent``'s (the trainer checks those again when it loads)."""
    for path in reversed(list_checkpoints(run_dir / "checkpoints")):
        try:
            manifest = read_manifest(path)
        except CheckpointError:
            continue  # damaged: the trainer falls back to an older one, or refuses, itself
        check_resumable_agent(run_dir, manifest, agent)
        saved = manifest.get("run_config", {}).get(IDENTITY_KEY)
        if saved is None:  # written before identities were recorded: nothing to compare
            return
        # Only the entries both record count; an env passed as an object ("custom") is not compared.
        shared = [k for k in identity if k in saved and "custom" not in (saved[k], identity[k])]
        changed = describe_differences(
            {k: saved[k] for k in shared}, {k: identity[k] for k in shared}, nested=True
        )
        if changed:
            raise CheckpointError(
                f"run dir {run_dir} holds a run of another task, seed or dataset ({'; '.join(changed)}); "
                "resume it with the same env, perturbation, seed and data, or use another run_dir or "
                "trainer.resume=never"
            )
        return


def _checked_suite(cfg: DictConfig) -> Any:
    """The evaluation suite of a config (None without one), its id and settings checked."""
    ev = cfg.evaluation
    if not ev.get("suite"):
        return None
    from rlrobust.envs.suites import get_suite

    suite = get_suite(str(ev.suite))
    if int(ev.episodes) < 1:
        raise ConfigError(f"evaluation.episodes must be >= 1, got {ev.episodes}")
    if ev.get("points_per_dim") is not None and int(ev.points_per_dim) < 2:
        raise ConfigError(
            f"evaluation.points_per_dim must be >= 2 (both bounds are evaluated), got {ev.points_per_dim}"
        )
    return suite


def _build_and_run(
    cfg: DictConfig,
    settings: Any,
    run_dir: Path,
    *,
    agent: Any,
    env: Any,
    dataset: Any,
    identity: dict[str, Any],
) -> TrainResult:
    env_fn = make_env_factory(env if env is not None else cfg.env, cfg.get("perturbation"))
    probe = env_fn() if not isinstance(env, gym.Env) else env
    obs_space, act_space = probe.observation_space, probe.action_space
    if not isinstance(env, gym.Env):
        probe.close()
    if dataset is not None and not isinstance(dataset, str):
        from rlrobust.data import check_spaces

        check_spaces(dataset, obs_space, act_space)
    if agent is None:  # make_agent validates the hyperparameters before building anything
        agent = make_agent(
            cfg.agent.name,
            obs_space,
            act_space,
            device=settings.device,
            seed=cfg.seed,
            **agent_hyperparameters(cfg.agent),
        )
    if settings.resume != "never":  # before config.yaml or anything else is written
        check_same_run(run_dir, identity, agent)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    # The suite of the run: the evaluation's, else the one the perturbation is defined on
    # (IWOCS searches it; a domain-randomized run is then evaluated on its own box).
    pert = cfg.get("perturbation") or {}
    suite = cfg.evaluation.get("suite") or (
        pert.get("suite") if isinstance(pert, (DictConfig, Mapping)) else None
    )
    if suite:  # the policy must fit the suite's env before training starts, not after it
        from rlrobust.evaluation.suite import check_policy_fits

        check_policy_fits(agent, suite)
    run_config = {**plain_dict(cfg), IDENTITY_KEY: identity}
    # An experiment tracker (logger=wandb|mlflow) gets the config now, every scalar during
    # training, and the report files at the end; it is opened and closed here, around the run.
    tracker = make_tracker(run_config.get("logger"), run_dir)
    try:
        if tracker is not None:
            tracker.log_config(run_config)
        vector_env_fn = batched_env_factory(
            env if env is not None else cfg.env, cfg.get("perturbation"), settings.device
        )
        trainer = Trainer(
            agent,
            env_fn,
            settings,
            run_dir,
            dataset=dataset,
            run_config=run_config,
            suite=suite,
            sinks=() if tracker is None else (tracker,),
            vector_env_fn=vector_env_fn,
        )
        result = trainer.run()
        if suite:
            summary = evaluate_on_suite(result.agent, cfg, run_dir, suite)
            result.metrics.update(summary)
            if tracker is not None:
                tracker.log_metrics(trainer.step, summary)
        if tracker is not None:
            tracker.log_files(run_dir, report_files(run_dir))
    finally:
        if tracker is not None:
            tracker.close()
    return result


def evaluate_on_suite(agent: Any, cfg: DictConfig, run_dir: Path, suite: str) -> dict[str, float]:
    """Robustness evaluation at the end of a run; writes the report into ``run_dir/evaluation``."""
    import json

    from rlrobust.evaluation.reports import format_report
    from rlrobust.evaluation.suite import evaluate

    ev = cfg.evaluation
    result = evaluate(
        agent,
        suite,
        episodes=int(ev.episodes),
        seed=int(cfg.seed),
        points_per_dim=ev.get("points_per_dim"),
        workers=ev.get("workers"),
    )
    out = run_dir / "evaluation"
    paths = result.save(out)
    summary = {f"suite/{k}": float(v) for k, v in result.summary().items()}
    final_path = run_dir / "final_evaluation.json"
    final = json.loads(final_path.read_text()) if final_path.exists() else {}
    nominal = final.get("eval/return_mean")
    final.update(summary)
    final_path.write_text(json.dumps(final, indent=2))
    print(result)
    print(format_report(result, nominal, paths["plot"]))
    return summary


def train(
    agent: Any,
    env: Any = None,
    *,
    total_steps: int,
    seed: int = 0,
    run_dir: str | Path | None = None,
    dataset: Any = None,
    agent_kwargs: Mapping[str, Any] | None = None,
    perturbation: Any = None,
    suite: str | None = None,
    logger: str | Mapping[str, Any] | None = None,
    **options: Any,
) -> TrainResult:
    """Train an agent; the Python twin of ``python scripts/train.py``.

    It composes the same Hydra config as the CLI (``conf/train.yaml``) and runs it, so the
    defaults and validation are the CLI's.

    Args:
        agent: a registered agent name (``"iqn"``) or an agent instance.
        env: a gymnasium id (``"CartPole-v1"``), a ``conf/env`` option name (``"cartpole"``), a
            ``gym.Env`` instance (``num_envs=1`` only) or a factory returning a fresh env; None
            with a dataset: the env recovered from the dataset's metadata.
        total_steps: env steps online, gradient steps offline.
        seed: the run seed.
        run_dir: output folder (default ``runs/<agent>-<env>-seed<seed>``); an existing run dir
            with checkpoints resumes (``resume="auto"``).
        dataset: offline dataset: a Minari id, a dataset folder or HDF5 path, or a loaded dataset.
        agent_kwargs: the agent's hyperparameters (SB3 names where SB3 has the concept).
        perturbation: a ``conf/perturbation`` option name or mapping (training under
            perturbation, e.g. domain randomization).
        suite: a perturbation suite id; the final evaluation also runs on it.
        logger: an experiment tracker, ``conf/logger`` option name (``"wandb"``, ``"mlflow"``) or
            a mapping of its options with ``name``; default ``"tensorboard"`` (no tracker).
        **options: trainer settings (:class:`TrainerSettings`), e.g. ``num_envs=4``.
    """
    overrides: dict[str, Any] = {"total_steps": total_steps, "seed": seed}
    if run_dir is not None:
        overrides["run_dir"] = str(run_dir)
    cfg = compose_train_config(
        agent=agent if isinstance(agent, str) else agent.name,
        env=env if isinstance(env, str) else None,
        perturbation=perturbation,
        agent_kwargs=agent_kwargs,
        trainer_options=options,
        suite=suite,
        logger=logger,
        top_level=overrides,
        dataset=dataset if isinstance(dataset, str) else None,
    )
    return run_from_config(
        cfg,
        agent=None if isinstance(agent, str) else agent,
        env=None if isinstance(env, str) else env,
        dataset=None if isinstance(dataset, str) else dataset,
        env_from_dataset=env is None,
    )
