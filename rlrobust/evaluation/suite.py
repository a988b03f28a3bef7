"""Robustness evaluation of a policy over a perturbation suite.

``evaluate(policy, "hopper-2d", episodes=5)`` runs the policy at every point of the suite's
grid (or a seeded uniform sample of the box) and returns a :class:`SuiteResult`:

* per point: mean, std, min and max return over ``episodes`` episodes;
* ``worst``: the minimum over points of the mean return (RRLS's worst-case score);
* ``mean``: the mean over points (RRLS's average-case score);
* ``cvar``: CVaR_alpha over points, the mean of the ``ceil(alpha * P)`` lowest point means
  (``alpha = 0.1`` by default: the worst 10% of the box; alpha -> 0 gives ``worst``, alpha = 1
  gives ``mean``).

Seeding uses common random numbers: episode ``j`` starts from reset seed ``spawn_seeds(seed,
episodes)[j]`` at *every* point, so differences between points come from the physics, not from
different initial states, and results do not depend on the number of workers.

Work is spread over ``workers`` processes (``spawn`` start method, safe with torch). Each worker
builds **one** env and re-parameterizes it per point (``set_params`` restores the nominal model
first); ``workers=1`` runs in this process.

Before any worker starts, the policy's observation and action spaces (recorded by agents,
checkpoints and SB3 models) are compared with the suite env's, and a mismatch is refused with
both shown (:func:`check_policy_fits`). Episodes are capped at the env's time limit (see
:mod:`rlrobust.core.episodes`). A progress bar shows points done, episodes/s and the ETA;
Ctrl-C stops the workers and raises ``KeyboardInterrupt`` after one line saying how far it got.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import sys
import warnings
from typing import Any

import numpy as np

from rlrobust.core.episodes import episode_step_cap, run_episodes
from rlrobust.core.errors import ConfigError, SpaceError
from rlrobust.core.seeding import spawn_seeds
from rlrobust.envs.suites import Suite, get_suite
from rlrobust.evaluation.batched import check_backend, evaluate_batched
from rlrobust.evaluation.reports import DEFAULT_CVAR_ALPHA, SuiteResult

# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}  # per-process: the env and policy built once by _init_worker


def _init_worker(
    policy_bytes: bytes, suite: Suite, env_kwargs: dict[str, Any], seeds: list[int], max_steps: int | None
) -> None:
    """Build this process's one env and its policy."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle, once
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    policy = pickle.loads(policy_bytes)
    try:
        if "torch" in sys.modules:  # one thread per worker: workers are the parallelism
            sys.modules["torch"].set_num_threads(1)
    except Exception:  # pragma: no cover
        pass
    _WORKER.update(
        env=suite.make_env(policy=policy, **env_kwargs),
        policy=policy,
        seeds=seeds,
        max_steps=max_steps,
        suite=suite,
    )


def _run_point(task: tuple[int, dict[str, float]]) -> tuple[int, list[float], list[int]]:
    index, point = task
    env, policy, seeds = _WORKER["env"], _WORKER["policy"], _WORKER["seeds"]
    _WORKER["suite"].set_point(env, point)  # parameters: restores the nominal model first
    returns, lengths = run_episodes(env, policy, seeds, _WORKER["max_steps"])
    return index, returns, lengths


def check_policy_fits(
    policy: Any, suite: str | Suite, env_kwargs: dict[str, Any] | None = None
) -> int | None:
    """Refuse a policy whose spaces do not fit the suite's env, before any work starts.

    Builds one env of the suite, compares its spaces with those the policy records
    (:func:`~rlrobust.interop.policies.policy_spaces`; a plain callable is not checked), and
    returns the episode step cap for that env (:func:`~rlrobust.core.episodes.episode_step_cap`).

    Raises:
        SpaceError: showing the policy's and the env's spaces.
    """
    from rlrobust.interop.policies import policy_spaces, spaces_fit

    suite = get_suite(suite)
    env = suite.make_env(policy=policy, **dict(env_kwargs or {}))
    try:
        recorded = policy_spaces(policy)
        if recorded is not None:
            problems = [
                f"{what} space: policy {mine} vs env {theirs}"
                for what, mine, theirs in (
                    ("observation", recorded[0], env.observation_space),
                    ("action", recorded[1], env.action_space),
                )
                if not spaces_fit(mine, theirs)
            ]
            if problems:
                raise SpaceError(
                    f"the policy does not fit suite {suite.id!r} ({suite.env_id}): "
                    + "; ".join(problems)
                    + ". Evaluate it on a suite of its own task"
                )
        return episode_step_cap(env)
    finally:
        env.close()


def _picklable(policy: Any) -> bytes | None:
    try:
        return pickle.dumps(policy)
    except Exception:
        return None


def _progress_bar(points: int, suite_id: str, *, enabled: bool) -> Any:
    """A bar over points: tqdm shows points done and the ETA; :func:`_advance` adds episodes/s."""
    from tqdm.auto import tqdm

    return tqdm(
        total=points,
        unit="point",
        desc=f"evaluate {suite_id}",
        disable=not enabled,
        mininterval=1.0,
        dynamic_ncols=True,
    )


def _advance(bar: Any, episodes: int) -> None:
    """One more point done (``episodes`` episodes)."""
    bar.update()
    elapsed = bar.format_dict.get("elapsed", 0)
    if elapsed > 0:
        bar.set_postfix_str(f"{bar.n * episodes / elapsed:.1f} episodes/s", refresh=False)


def _run_points(
    tasks: list[tuple[int, dict[str, float]]],
    suite: Suite,
    fn: Any,
    payload: bytes | None,
    env_kwargs: dict[str, Any],
    seeds: list[int],
    max_steps: int | None,
    *,
    workers: int,
    progress: bool,
) -> list[tuple[int, list[float], list[int]]]:
    """Every point's episodes, in this process or in ``workers`` spawned ones, with the bar."""
    results: list[tuple[int, list[float], list[int]]] = []
    episodes = len(seeds)
    bar = _progress_bar(len(tasks), suite.id, enabled=progress)
    try:
        if workers == 1:
            _WORKER.update(
                env=suite.make_env(policy=fn, **env_kwargs),
                policy=fn,
                seeds=seeds,
                max_steps=max_steps,
                suite=suite,
            )
            try:
                for task in tasks:
                    results.append(_run_point(task))
                    _advance(bar, episodes)
            finally:
                _WORKER.pop("env").close()
                _WORKER.clear()
        else:
            ctx = mp.get_context("spawn")
            chunksize = max(1, len(tasks) // (workers * 4))
            with ctx.Pool(
                workers, initializer=_init_worker, initargs=(payload, suite, env_kwargs, seeds, max_steps)
            ) as pool:
                for result in pool.imap_unordered(_run_point, tasks, chunksize=chunksize):
                    results.append(result)
                    _advance(bar, episodes)
    except KeyboardInterrupt:  # leaving the pool's with-block has terminated the workers
        bar.write(
            f"evaluation on {suite.id} interrupted after {len(results)}/{len(tasks)} points; "
            "nothing was written",
            file=sys.stderr,
        )
        raise
    finally:
        bar.close()
    return results


def evaluate(
    policy: Any,
    suite: str | Suite,
    *,
    episodes: int,
    seed: int = 0,
    points_per_dim: int | None = None,
    workers: int | None = None,
    samples: int | None = None,
    cvar_alpha: float = DEFAULT_CVAR_ALPHA,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    backend: str = "cpu",
    progress: bool = True,
) -> SuiteResult:
    """Evaluate ``policy`` over the points of ``suite``.

    Args:
        policy: an rlrobust agent (``act(obs, deterministic=True)``), a checkpoint path, a
            Stable-Baselines3 model or ``.zip`` path, or a callable ``obs -> action``.
        suite: suite id (see :func:`rlrobust.envs.list_suites`) or a :class:`Suite`.
        episodes: episodes per point.
        seed: evaluation seed (reset seeds and, with ``samples``, the sampled points).
        points_per_dim: grid resolution (default: the suite's, 10); both bounds included.
        workers: processes; None = CPU count (at most one per point); 1 = in this process.
        samples: if given, evaluate this many points drawn uniformly from the box instead of the grid.
        cvar_alpha: fraction of worst points averaged by ``SuiteResult.cvar``.
        env_kwargs: forwarded to ``gym.make`` (e.g. ``max_episode_steps``).
        device: where checkpoints/SB3 models are loaded (and, with ``backend="warp"``, simulated).
        backend: ``"cpu"`` (MuJoCo in worker processes) or ``"warp"``: every point x episode as
            one world of one MuJoCo Warp simulation (:mod:`rlrobust.evaluation.batched`; needs
            the ``warp`` extra; ``workers`` is ignored).
        progress: show a progress bar (points done, episodes/s, ETA) on stderr.

    Returns:
        A :class:`SuiteResult`.

    Raises:
        SpaceError: the policy's spaces do not fit the suite's env (checked before any work).
        KeyboardInterrupt: on Ctrl-C, after stopping the workers.
    """
    from rlrobust.interop.policies import as_policy

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if not 0.0 < cvar_alpha <= 1.0:
        raise ConfigError(f"cvar_alpha must lie in (0, 1], got {cvar_alpha}")
    suite = get_suite(suite)
    check_backend(backend, suite)
    if samples is not None:
        points, grid_shape = suite.sample(samples, seed), None
    else:
        points = suite.grid(points_per_dim)
        n = suite.points_per_dim if points_per_dim is None else int(points_per_dim)
        grid_shape = (n,) * suite.dims
    fn = as_policy(policy, device)
    env_kwargs = dict(env_kwargs or {})
    max_steps = check_policy_fits(fn, suite, env_kwargs)
    seeds = spawn_seeds(seed, episodes)  # common random numbers across points
    workers = (
        min(os.cpu_count() or 1, len(points)) if workers is None else max(1, min(int(workers), len(points)))
    )
    if backend == "warp":
        workers = 1  # one batched simulation in this process

    payload = _picklable(fn) if workers > 1 else None
    if workers > 1 and payload is None:
        warnings.warn(
            f"policy {fn!r} cannot be pickled to worker processes (a lambda or local function?); "
            "evaluating in this process instead. Use a module-level function to run in parallel.",
            stacklevel=2,
        )
        workers = 1

    returns = np.zeros((len(points), episodes))
    lengths = np.zeros((len(points), episodes), dtype=np.int64)
    if backend == "warp":  # one batched simulation in this process
        returns, lengths = evaluate_batched(fn, suite, points, seeds, env_kwargs=env_kwargs, device=device)
    else:
        results = _run_points(
            list(enumerate(points)),
            suite,
            fn,
            payload,
            env_kwargs,
            seeds,
            max_steps,
            workers=workers,
            progress=progress,
        )
        for index, rets, lens in results:
            returns[index], lengths[index] = rets, lens

    return SuiteResult(
        suite=suite.id,
        env_id=suite.env_id,
        names=suite.names,
        points=points,
        returns=returns,
        lengths=lengths,
        seed=seed,
        cvar_alpha=cvar_alpha,
        grid_shape=grid_shape,
        settings={
            "episodes": episodes,
            "points_per_dim": points_per_dim,
            "samples": samples,
            "workers": workers,
            "env_kwargs": env_kwargs,
            "backend": backend,
            "bounds": {k: list(v) for k, v in suite.bounds.items()},
        },
    )
