"""``W`` worlds of one Gymnasium MuJoCo task in one MuJoCo Warp simulation.

:class:`WarpVectorEnv` is a Gymnasium ``VectorEnv`` whose sub-envs are the worlds of a single
batched `MuJoCo Warp <https://github.com/google-deepmind/mujoco_warp>`_ model. Every world has
its own values of the task's named physical parameters (:mod:`rlrobust.envs.mujoco_params`),
written into per-world copies of exactly the model fields those parameters touch
(:mod:`rlrobust.envs.batched.worlds`). One ``step`` advances all worlds by one control step
(the task's frame skip) and returns torch tensors on the simulation device: observations,
rewards and terminations are computed from zero-copy views of the simulator's state
(``wp.to_torch``) with Gymnasium's formulas (:mod:`rlrobust.envs.batched.tasks`).

Equivalence with the CPU path: world ``i`` reset with seed ``s`` starts where
``gym.make(env_id)`` reset with seed ``s`` starts (the reset noise is drawn from a per-world
NumPy generator seeded the same way, on the host), and its parameters are those a
``ParameterPerturbation`` with the same values writes. The physics differs only by MuJoCo
Warp's float32 arithmetic. Finished worlds reset in the same step (Gymnasium's ``SAME_STEP``
autoreset, as :func:`rlrobust.core.collector.make_vector_env` uses): the returned observation
is the new episode's first one and ``info["final_obs"]`` holds the last one of every world
(``info["_final_obs"]`` marks the worlds that finished).

Needs the ``warp`` extra (``pip install 'rlrobust[warp]'``). MuJoCo Warp compiles its kernels
on first use — minutes on a CPU, once: Warp caches them in its kernel cache folder
(``~/.cache/warp`` by default) and later runs load them in seconds.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils.seeding import np_random

from rlrobust.core.errors import ConfigError, MissingDependencyError, PerturbationError, SpaceError
from rlrobust.envs.batched.tasks import check_task
from rlrobust.envs.batched.worlds import GRAVITY, WorldParameters
from rlrobust.envs.mujoco_params import silence_mujoco_warnings
from rlrobust.envs.perturbation import stream_generator

INSTALL_HINT = "pip install 'rlrobust[warp]'"
_COMPILE_NOTICE: set[str] = set()  # devices whose first-step notice was printed in this process


def import_warp() -> tuple[Any, Any]:
    """``(warp, mujoco_warp)``, imported.

    Raises:
        MissingDependencyError: naming the ``warp`` extra when either is not installed.
    """
    try:
        import mujoco_warp
        import warp
    except ImportError as err:
        raise MissingDependencyError(
            f"backend='warp' needs MuJoCo Warp, which is not installed ({err}); install the extra: {INSTALL_HINT}"
        ) from err
    return warp, mujoco_warp


Sampler = Callable[[np.random.Generator], Mapping[str, float]]


class WarpVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` worlds of ``env_id`` with per-world physical parameters, stepped together.

    Args:
        env_id: a supported Gymnasium id (:data:`rlrobust.envs.batched.tasks.TASKS`).
        num_envs: number of worlds ``W``.
        params: each world's fixed parameter values: a list of ``W`` mappings, or one mapping
            for every world (names left out are nominal).
        sampler: optional ``rng -> {name: value}`` drawn for each world at each of its resets
            (domain randomization), from that world's own generator as ``ParameterPerturbation``
            draws it; e.g. :class:`rlrobust.envs.UniformSampler`.
        bounds: optional box ``{name: (low, high)}`` that every value must lie in; defaults to
            the sampler's ``bounds``.
        device: Warp device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); tensors live on it.
        nconmax, njmax: contacts and constraints allocated per world (MuJoCo Warp's defaults if None).
        **env_kwargs: forwarded to ``gym.make`` (``max_episode_steps``, ``ctrl_cost_weight``, ...).

    Raises:
        PerturbationError: unsupported task, unknown parameter, unphysical value or a value
            outside ``bounds`` — before anything is compiled.
        MissingDependencyError: the ``warp`` extra is not installed.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        params: Sequence[Mapping[str, float]] | Mapping[str, float] | None = None,
        sampler: Sampler | None = None,
        bounds: Mapping[str, Sequence[float]] | None = None,
        device: str = "cpu",
        nconmax: int | None = None,
        njmax: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        task_cls = check_task(env_id)
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        fixed = (
            [dict(params or {})] * num_envs if params is None or isinstance(params, Mapping) else list(params)
        )
        if len(fixed) != num_envs:
            raise ConfigError(
                f"params has {len(fixed)} settings for {num_envs} worlds; give one per world or one mapping"
            )
        if bounds is None and sampler is not None:
            bounds = getattr(sampler, "bounds", None)
        # The parameters that may vary between worlds: their model fields get one row per world.
        names = [
            *(n for values in fixed for n in values),
            *(bounds or {}),
            *(n for point in getattr(sampler, "points", []) for n in point),
        ]
        if sampler is not None and bounds is None and not hasattr(sampler, "points"):
            raise ConfigError(
                "a sampler without `bounds` or `points` attributes needs `bounds`, the box it draws from"
            )

        silence_mujoco_warnings()
        self._template = gym.make(env_id, **env_kwargs)  # the task's constants and nominal host model
        try:
            self.worlds = WorldParameters(self._template, names, bounds)
            self._fixed = [self.worlds.validate(values) for values in fixed]
            wp, mjw = import_warp()
        except Exception:
            self._template.close()
            raise
        self._wp, self._mjw = wp, mjw
        self.env_id = env_id
        self.spec = self._template.spec
        self.task = task_cls(self._template)
        self.num_envs = int(num_envs)
        self.sampler = sampler
        self.max_episode_steps = self._template.spec.max_episode_steps if self._template.spec else None

        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.task.obs_dim,), np.float32)
        self.single_action_space = self._template.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)

        self.device = wp.get_device(device)
        self.torch_device = torch.device(wp.device_to_torch(self.device))
        # On a GPU, Warp launches on torch's current stream, so torch's reads of the zero-copy
        # views are ordered after the kernels that wrote them (and Warp's after torch's writes).
        self._stream = wp.stream_from_torch(self.torch_device) if self.device.is_cuda else None
        self._build(nconmax, njmax)
        #: each world's parameter values in its current episode
        self.params: list[dict[str, float]] = [dict(v) for v in self._fixed]
        self._write_params(np.arange(self.num_envs), self.params)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._param_rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.torch_device)
        self._needs_reset = True

    # -- construction -------------------------------------------------------------------------

    def _build(self, nconmax: int | None, njmax: int | None) -> None:
        import dataclasses

        wp, mjw = self._wp, self._mjw
        mjm = self._template.unwrapped.model  # type: ignore[attr-defined]
        specs = {f.name: f.type for f in dataclasses.fields(mjw.Model)}
        # Fields the parameters touch but MuJoCo Warp has no use for (e.g. dof_M0) stay on the host.
        fields = [f for f in self.worlds.fields if f == GRAVITY or f in specs]
        unbatchable = [f for f in fields if f != GRAVITY and getattr(specs[f], "shape", ("",))[0] != "*"]
        if unbatchable:  # a new MuJoCo Warp version may make a touched field global
            raise PerturbationError(
                f"parameters {list(self.worlds.names)} touch model fields {unbatchable} that MuJoCo Warp "
                "cannot hold per world; perturb other parameters"
            )
        with self._on_device():
            self._model = mjw.put_model(mjm, batch_sizes={f: self.num_envs for f in fields if f != GRAVITY})
            if GRAVITY in fields:  # the options have no batch_sizes: give gravity one row per world
                self._model.opt.gravity = wp.array(
                    np.tile(mjm.opt.gravity, (self.num_envs, 1)), dtype=wp.vec3
                )
            self._data = mjw.make_data(mjm, nworld=self.num_envs, nconmax=nconmax, njmax=njmax)
        model = self._model
        #: zero-copy torch views of the per-world model fields, ``(W, ...)``
        self.model_views = {
            f: wp.to_torch(model.opt.gravity if f == GRAVITY else getattr(model, f)) for f in fields
        }
        #: zero-copy torch views of the simulator state, ``(W, nq)``, ``(W, nv)``, ``(W, nu)``
        self.qpos = wp.to_torch(self._data.qpos)
        self.qvel = wp.to_torch(self._data.qvel)
        self.ctrl = wp.to_torch(self._data.ctrl)

    def _write_params(self, worlds: np.ndarray, settings: Sequence[Mapping[str, float]]) -> None:
        rows = self.worlds.rows(settings)
        for f, view in self.model_views.items():
            view[torch.as_tensor(worlds, device=self.torch_device)] = torch.as_tensor(
                rows[f], dtype=view.dtype, device=self.torch_device
            ).reshape(len(worlds), *view.shape[1:])

    # -- VectorEnv API --------------------------------------------------------------------------

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Reset every world; an int seed gives world ``i`` seed ``seed + i``, a list one seed each.

        ``options={"params": ...}`` (one mapping, or one per world) sets this episode's values,
        as ``ParameterPerturbation.reset`` does; otherwise the sampler (if any) redraws them.
        """
        if seed is None or isinstance(seed, int | np.integer):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ConfigError(f"got {len(seeds)} seeds for {self.num_envs} worlds")
        for i, s in enumerate(seeds):
            if s is not None or self._rngs[i] is None:
                self._rngs[i] = np_random(s)[0]
                self._param_rngs[i] = stream_generator(s, "params")
        episode = None
        if options and "params" in options:
            given = options["params"]
            episode = [given] * self.num_envs if isinstance(given, Mapping) else list(given)
        obs = self.reset_worlds(np.arange(self.num_envs), episode)
        self._needs_reset = False
        return obs, {}

    def step(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One control step of every world; ``actions`` is ``(W, act_dim)`` (tensor or array)."""
        if self._needs_reset:
            raise ConfigError("call reset() before step()")
        action = torch.as_tensor(actions, dtype=torch.float32, device=self.torch_device)
        if tuple(action.shape) != self.action_space.shape:
            raise SpaceError(f"actions have shape {tuple(action.shape)}; expected {self.action_space.shape}")
        self._announce_compile()
        self.ctrl.copy_(action)
        x_before = self.qpos[:, 0].clone()
        with self._on_device():
            for _ in range(self.task.frame_skip):
                self._mjw.step(self._model, self._data)
        obs = self.task.observe(self.qpos, self.qvel)
        reward, terminated = self.task.outcome(x_before, self.qpos, self.qvel, action)
        self._elapsed += 1
        if self.max_episode_steps is None:
            truncated = torch.zeros_like(terminated)
        else:
            truncated = self._elapsed >= self.max_episode_steps
        done = terminated | truncated
        info: dict[str, Any] = {}
        finished = np.flatnonzero(done.cpu().numpy())
        if finished.size:
            info["final_obs"], info["_final_obs"] = obs, done
            obs = obs.clone()
            obs[torch.as_tensor(finished, device=self.torch_device)] = self.reset_worlds(finished)
        return obs, reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self._template.close()

    def set_params(self, **values: float) -> None:
        """Fixed values for every world from its next reset (names must be among the worlds' parameters)."""
        values = self.worlds.validate(values)
        self._fixed = [{**fixed, **values} for fixed in self._fixed]

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """``SyncVectorEnv.call`` for what the trainer asks of its training envs: ``set_params``,
        and ``env_state_problem`` — the worlds' simulator state is not captured, so checkpoints
        hold none and a resumed run resets the worlds."""
        if name == "set_params":
            self.set_params(*args, **kwargs)
            return (None,) * self.num_envs
        if name == "env_state_problem":
            return (
                "batched MuJoCo Warp worlds are not captured in checkpoints; a resumed run resets them",
            ) * self.num_envs
        raise AttributeError(
            f"WarpVectorEnv.call supports 'set_params' and 'env_state_problem', not {name!r}"
        )

    def reset_worlds(
        self, worlds: Sequence[int] | np.ndarray, episode: Sequence[Mapping[str, float]] | None = None
    ) -> torch.Tensor:
        """Start a new episode in ``worlds`` (indices) only; returns their first observations.

        Each world continues its own generators (as a Gymnasium env reset without a seed). Its
        parameters for the episode are its fixed values updated by ``episode`` (one mapping per
        world) or, without it, by the sampler's draw — as ``ParameterPerturbation.reset`` does.
        The other worlds are left as they are.
        """
        wp = self._wp
        worlds = np.asarray(worlds, dtype=np.int64)
        index = torch.as_tensor(worlds, device=self.torch_device)
        for i in worlds:
            if self._rngs[i] is None:  # never reset with a seed: fresh entropy, as Gymnasium does
                self._rngs[i], self._param_rngs[i] = np_random(None)[0], stream_generator(None, "params")
        if episode is None:
            episode = [{} if self.sampler is None else self.sampler(self._param_rngs[i]) for i in worlds]
        if len(episode) != len(worlds):
            raise ConfigError(f"got {len(episode)} parameter settings for {len(worlds)} worlds")
        settings = [{**self._fixed[i], **self.worlds.validate(v)} for i, v in zip(worlds, episode)]
        changed = [k for k, (i, v) in enumerate(zip(worlds, settings)) if v != self.params[i]]
        if changed:  # model rows are rewritten only where the parameters change
            self._write_params(worlds[changed], [settings[k] for k in changed])
            for k in changed:
                self.params[worlds[k]] = settings[k]
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.torch_device)
        mask[index] = True
        with self._on_device():  # zero time, velocities, warm starts, applied forces
            self._mjw.reset_data(self._model, self._data, reset=wp.from_torch(mask))
        states = [self.task.reset_state(self._rngs[i]) for i in worlds]
        self.qpos[index] = torch.as_tensor(
            np.stack([q for q, _ in states]), dtype=self.qpos.dtype, device=self.torch_device
        )
        self.qvel[index] = torch.as_tensor(
            np.stack([v for _, v in states]), dtype=self.qvel.dtype, device=self.torch_device
        )
        self._elapsed[index] = 0
        return self.task.observe(self.qpos[index], self.qvel[index])

    # -- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _on_device(self) -> Iterator[None]:
        """Warp calls on this env's device (and, on a GPU, on torch's current stream)."""
        with self._wp.ScopedDevice(self.device), self._wp.ScopedStream(self._stream):
            yield

    def _announce_compile(self) -> None:
        key = str(self.device)
        if key not in _COMPILE_NOTICE:
            _COMPILE_NOTICE.add(key)
            print(
                f"[rlrobust] MuJoCo Warp loads its kernels for {key}; the first run compiles them "
                f"(minutes on a CPU) into {self._wp.config.kernel_cache_dir}, later runs load them in seconds",
                file=sys.stderr,
            )


class HostArrays(gym.vector.VectorWrapper):
    """A batched env's outputs as host NumPy arrays (what :class:`rlrobust.core.collector.Collector`
    and other NumPy consumers expect); actions may be NumPy or torch. One device-to-host copy per
    step; consumers that stay on the device should use the torch env directly."""

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Forwarded to the batched env (:meth:`WarpVectorEnv.call`)."""
        return self.env.call(name, *args, **kwargs)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs.cpu().numpy(), info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = {k: v.cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in info.items()}
        return (
            obs.cpu().numpy(),
            reward.cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info,
        )


_KINDS = ("none", "static", "random")  # perturbations that are per-episode parameters


def from_perturbation(
    env_id: str, num_envs: int, perturbation: Any = None, *, device: str = "cpu", **env_kwargs: Any
) -> WarpVectorEnv:
    """The batched twin of ``rlrobust.envs.make_env(env_id, perturbation)``: ``num_envs`` worlds
    with the perturbation's fixed values, box and sampler (``random`` redraws each world's
    parameters at each of its resets, from that world's own stream).

    The CPU wrapper is built first, so the perturbation is validated exactly as on the CPU path.

    Raises:
        PerturbationError: a perturbation other than none/static/random (adversaries that act at
            every step have no batched form yet), or anything the CPU wrapper refuses.
    """
    from rlrobust.envs.factory import make_env
    from rlrobust.envs.perturbation import ParameterPerturbation

    check_task(env_id)
    cpu = make_env(env_id, perturbation, **env_kwargs)
    try:
        wrappers = []
        inner = cpu
        while isinstance(inner, gym.Wrapper):
            wrappers.append(inner)
            inner = inner.env
        params = [w for w in wrappers if isinstance(w, ParameterPerturbation)]
        others = [
            type(w).__name__
            for w in wrappers
            if type(w).__module__ == ParameterPerturbation.__module__
            and not isinstance(w, ParameterPerturbation)
        ]
        if others:
            raise PerturbationError(f"the batched backend supports perturbation kinds {_KINDS}; got {others}")
        if not params:
            return WarpVectorEnv(env_id, num_envs, device=device, **env_kwargs)
        wrapper = params[0]
        nominal = wrapper.nominal_params()
        fixed = {k: v for k, v in wrapper.get_params().items() if v != nominal[k]}
    finally:
        cpu.close()
    return WarpVectorEnv(
        env_id,
        num_envs,
        params=fixed,
        sampler=wrapper.sampler,
        bounds=wrapper.bounds,
        device=device,
        **env_kwargs,
    )
