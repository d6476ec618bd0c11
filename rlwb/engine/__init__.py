"""The vectorized rollout engine: ``make_engine(task, num_envs, backend="auto")``.

Backends (see ``BACKENDS``): ``mujoco`` (native MuJoCo on CPU threads), ``warp`` (MuJoCo
Warp, GPU), ``torch`` (analytic tasks written in torch), ``gym`` (any Gymnasium id via
``gymnasium.vector``) and ``envpool`` (Atari games, ``Pong-v5``). All return the same
:class:`Engine` API.

``make_engine`` is where a task id is resolved, once: it splits the keywords into engine
options (``max_episode_steps``, ``action_repeat``: see :mod:`rlwb.engine.base`), the
backend's own options (its constructor's keywords, e.g. ``num_threads``) and the task's
arguments, builds the task definition with :func:`rlwb.tasks.build_task` and hands it to
the backend.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import torch

from rlwb import tasks
from rlwb.engine.base import Engine, EngineSpec, Policy, RolloutResult, _positive_int
from rlwb.engine.pixels import PIXEL_OPTIONS, parse_options
from rlwb.errors import BackendUnavailableError, ConfigError, UnknownTaskError

BACKENDS: dict[str, str] = {
    "mujoco": "rlwb.engine.mujoco_backend:MujocoEngine",
    "warp": "rlwb.engine.warp_backend:WarpEngine",
    "torch": "rlwb.engine.torch_backend:TorchEngine",
    "gym": "rlwb.engine.gym_backend:GymEngine",
    "envpool": "rlwb.engine.envpool_backend:EnvpoolEngine",
}

__all__ = [
    "BACKENDS",
    "Engine",
    "EngineSpec",
    "Policy",
    "RolloutResult",
    "backend_class",
    "backend_status",
    "make_engine",
    "state_from_mujoco",
    "state_from_qpos_qvel",
]

ENGINE_OPTIONS = ("max_episode_steps", "action_repeat", *PIXEL_OPTIONS)
_FIXED = {"self", "task", "num_envs", "device", "seed", "dtype", "definition"}


def state_from_mujoco(model: Any, data: Any, elapsed: int = 0) -> torch.Tensor:
    """Engine state row of a MuJoCo ``MjData`` (see :mod:`rlwb.engine.mujoco_state`)."""
    from rlwb.engine.mujoco_state import state_from_mujoco as convert

    return convert(model, data, elapsed)


def state_from_qpos_qvel(model: Any, qpos: Any, qvel: Any, time: float = 0.0) -> torch.Tensor:
    """Engine state rows from positions and velocities (see :mod:`rlwb.engine.mujoco_state`)."""
    from rlwb.engine.mujoco_state import state_from_qpos_qvel as convert

    return convert(model, qpos, qvel, time)


def backend_options(cls: type[Engine]) -> list[str]:
    """The backend's own keyword options (its constructor's named keywords)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name not in _FIXED and p.kind == p.POSITIONAL_OR_KEYWORD]


def backend_class(name: str) -> type[Engine]:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    module_name, _, attr = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} cannot be imported here: {exc}") from exc
    return getattr(module, attr)


def backend_status(
    name: str, device: str | torch.device | None = None, auto: bool = False
) -> tuple[bool, str]:
    """(available, reason) for a backend on this machine and device; with ``auto``,
    whether ``backend="auto"`` would pick it."""
    try:
        cls = backend_class(name)
    except BackendUnavailableError as exc:
        return False, str(exc)
    dev = None if device is None else torch.device(device)
    return cls.auto_available(dev) if auto else cls.available(dev)


def _gym_registered(task_id: str) -> bool:
    import gymnasium

    tasks.register_gym_plugin(task_id)  # dm_control/* ids appear once shimmy is imported
    return task_id in gymnasium.registry


def make_engine(
    task: str,
    num_envs: int = 1,
    backend: str = "auto",
    device: str | torch.device | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
    **task_kwargs: Any,
) -> Engine:
    """Build a batched engine of ``num_envs`` members of ``task``.

    ``backend="auto"`` picks the first of the task's native backends that works here (MuJoCo
    tasks: ``warp`` with CUDA, else ``mujoco``), falling back to ``gym`` for any other
    registered Gymnasium id. ``dtype`` is the dtype of observations, rewards and actions
    (physics always runs in the backend's own precision). ``task_kwargs`` go to the task's
    constructor (Gymnasium's env arguments, e.g. ``frame_skip=4``), except the engine
    options ``max_episode_steps`` (time limit in engine steps), ``action_repeat`` (task
    steps per engine step), the pixel options ``observation`` (``"state"``, ``"pixels"``
    or ``"both"``), ``image_size``, ``frame_stack`` and ``camera`` (see
    :mod:`rlwb.engine.pixels`) and the backend's options (e.g. ``num_threads``).
    """
    if not isinstance(task, str):
        raise ConfigError(f"task must be a task id string, got {type(task).__name__}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ConfigError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    dev = torch.device(device) if device is not None else None
    entry = tasks.find(task)
    if backend == "envpool" and not (status := backend_status(backend))[0]:
        raise BackendUnavailableError(status[1])
    if backend in ("auto", "envpool") and entry is None and _atari(task):
        backend = "envpool"  # Atari ids run on EnvPool only (the backend checks the id)
    elif backend == "auto":
        backend = _pick_backend(task, entry, dev, task_kwargs.get("observation", "state"))
    elif backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend {backend!r}; choose one of: auto, {', '.join(BACKENDS)}"
        )
    elif backend == "gym":
        if entry is not None and not entry.gym_id and not _gym_registered(task):
            raise BackendUnavailableError(
                f"task {task!r} has no Gymnasium counterpart for backend 'gym'; it runs on: "
                f"{', '.join(entry.backends)}"
            )
        if not _gym_registered(entry.gym_id if entry and entry.gym_id else task):
            raise UnknownTaskError(tasks.unknown_task_message(task))
    elif entry is None:
        if _gym_registered(task):
            raise BackendUnavailableError(
                f"task {task!r} is a Gymnasium env without an rlwb definition; use backend='gym'"
            )
        raise UnknownTaskError(tasks.unknown_task_message(task))
    elif backend not in entry.backends:
        raise BackendUnavailableError(
            f"task {task!r} does not run on backend {backend!r}; it runs on: "
            f"{', '.join(entry.backends + (('gym',) if entry.gym_id else ()))}"
        )
    cls = backend_class(backend)
    pixels = parse_options(**{k: task_kwargs[k] for k in PIXEL_OPTIONS if k in task_kwargs})
    if pixels is not None and cls.render_refusal():
        raise ConfigError(f"observation={pixels.observation!r}: {cls.render_refusal()}")
    ok, why = cls.available(dev)
    if not ok:
        raise BackendUnavailableError(f"backend {backend!r} is unavailable here: {why}")
    rest = dict(task_kwargs)
    options = {k: rest.pop(k) for k in ENGINE_OPTIONS if k in rest}
    if options.get("max_episode_steps") is not None:
        _positive_int("max_episode_steps", options["max_episode_steps"])
    _positive_int("action_repeat", options.get("action_repeat", 1))
    for name in PIXEL_OPTIONS:
        options.pop(name, None)
    own = backend_options(cls)
    backend_kwargs = {k: rest.pop(k) for k in own if k in rest}
    if "definition" in inspect.signature(cls.__init__).parameters:
        backend_kwargs["definition"] = tasks.build_task(entry, rest, [*ENGINE_OPTIONS, *own])
    else:  # gym (Gymnasium's own arguments) and backends that build their task themselves
        backend_kwargs.update(rest)
    engine = cls(task, num_envs=num_envs, device=dev, seed=seed, dtype=dtype, **backend_kwargs)
    try:
        engine._configure(**options, pixels=pixels)
    except BaseException:
        engine.close()
        raise
    engine._factory = dict(
        task=task, backend=backend, device=engine.device, dtype=dtype, **task_kwargs
    )
    engine.spec = dataclasses.replace(engine.spec, backend=backend, task_kwargs=dict(task_kwargs))
    return engine


def _atari(task: str) -> bool:
    """Whether ``task`` is an EnvPool Atari id (``Pong-v5``; never without EnvPool)."""
    from rlwb.engine.envpool_backend import is_atari_id

    return is_atari_id(task)


def _pick_backend(
    task: str, entry: tasks.TaskEntry | None, device: torch.device | None, observation: str
) -> str:
    if entry is not None:
        reasons = []
        for name in entry.backends:
            ok, why = backend_status(name, device, auto=True)
            if ok and observation != "state" and backend_class(name).render_refusal():
                ok, why = False, backend_class(name).render_refusal()
            if ok:
                return name
            reasons.append(f"{name}: {why}")
        if entry.gym_id and _gym_registered(entry.gym_id):
            return "gym"
        raise BackendUnavailableError(f"no backend can run {task!r} here ({'; '.join(reasons)})")
    if _gym_registered(task):
        return "gym"
    raise UnknownTaskError(tasks.unknown_task_message(task))
