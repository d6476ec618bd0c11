"""Task registry: which tasks exist, which backends can run them, and how to build them.

A task id is Gymnasium's (``HalfCheetah-v5``, ``Pendulum-v1``) where one exists, so the
same string works on the ``gym`` backend as the oracle. Definitions live in ``rlwb.envs``
and register themselves on import; nothing heavy happens at registration.

This module is the one place a task id is looked up and its definition built
(:func:`build_task`); ``make_engine`` resolves the task once and hands the built definition
to the backend.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rlwb.errors import BackendUnavailableError, ConfigError, UnknownTaskError


@dataclass(frozen=True)
class TaskEntry:
    """One registered task.

    ``backends`` lists the native backends in order of preference; ``loader`` is
    ``"module:Class"`` of the task definition, built with the task's keyword arguments.
    ``gym_id`` is the Gymnasium id the ``gym`` backend uses (and tests compare against).
    """

    id: str
    backends: tuple[str, ...]
    loader: str
    gym_id: str | None = None
    family: str = ""
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    def load_class(self) -> type:
        """The definition class named by ``loader`` (a clear error if it cannot load)."""
        module_name, _, attr = self.loader.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise BackendUnavailableError(
                f"task {self.id!r}: its definition {self.loader!r} cannot be loaded ({exc})"
            ) from exc

    def build(self, **kwargs: Any) -> Any:
        """The task definition built with ``defaults`` updated by ``kwargs``."""
        return build_task(self, kwargs)


_REGISTRY: dict[str, TaskEntry] = {}
_builtin_loaded = False


def register(entry: TaskEntry) -> TaskEntry:
    if entry.id in _REGISTRY and _REGISTRY[entry.id] != entry:
        raise ValueError(f"task {entry.id!r} is already registered differently")
    _REGISTRY[entry.id] = entry
    return entry


def _load_builtin() -> None:
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        importlib.import_module("rlwb.envs")


def all_tasks() -> dict[str, TaskEntry]:
    _load_builtin()
    return dict(_REGISTRY)


def find(task_id: str) -> TaskEntry | None:
    _load_builtin()
    return _REGISTRY.get(task_id)


def get(task_id: str) -> TaskEntry:
    entry = find(task_id)
    if entry is None:
        raise UnknownTaskError(unknown_task_message(task_id))
    return entry


def argument_names(cls: type) -> list[str]:
    """Constructor arguments of a task definition class (dataclass fields, an
    ``argument_names()`` classmethod, or the ``__init__`` signature)."""
    if hasattr(cls, "argument_names"):
        return list(cls.argument_names())
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def build_task(
    task: str | TaskEntry, kwargs: dict[str, Any], engine_options: Iterable[str] = ()
) -> Any:
    """Build the definition of ``task`` with ``entry.defaults`` updated by ``kwargs``.

    An unknown argument or a bad value becomes one :class:`~rlwb.errors.ConfigError` that
    lists the task's arguments (and ``engine_options``, the engine's own keywords)."""
    entry = task if isinstance(task, TaskEntry) else get(task)
    cls = entry.load_class()
    merged = {**entry.defaults, **kwargs}
    valid = argument_names(cls)
    unknown = sorted(set(merged) - set(valid))
    options = sorted(engine_options)
    hint = f"; engine options: {', '.join(options)}" if options else ""
    if unknown:
        raise ConfigError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for task {entry.id!r}; "
            f"task arguments: {', '.join(valid) or 'none'}{hint}"
        )
    try:
        return cls(**merged)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad argument for task {entry.id!r}: {exc}") from exc


def reward_from_obs(task_id: str, task_kwargs: dict[str, Any] | None = None) -> Any:
    """The ``reward_from_obs(obs, action, next_obs) -> (reward, terminated)`` a task offers
    model-based planners (``rlwb.planners.models.RewardFn``), bound to its definition; None
    for a task without one (or unknown here), and for a task made with arguments: they can
    change the reward's weights, the observation layout or the step itself (action repeat),
    and an agent must build the same networks for a run it resumes as it did when it began."""
    entry = find(task_id)
    if task_kwargs or entry is None:
        return None
    return getattr(entry.build(), "reward_from_obs", None)


# Gymnasium ids that exist only once their plugin package is imported (Gymnasium 1.x has
# no entry-point discovery): prefix -> module whose import registers them.
GYM_PLUGINS = {"dm_control/": "shimmy"}


def register_gym_plugin(gym_id: str) -> None:
    """Import the package that registers ``gym_id`` with Gymnasium (``dm_control/...``:
    shimmy), if it is installed, so the ``gym`` backend and videos find the id."""
    for prefix, module in GYM_PLUGINS.items():
        if gym_id.startswith(prefix):
            try:
                importlib.import_module(module)
            except ImportError:
                return  # the caller reports the id as unknown


def unknown_task_message(task_id: str) -> str:
    known = sorted(all_tasks())
    close = difflib.get_close_matches(task_id, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known tasks: {', '.join(known)}"
    return f"unknown task id {task_id!r} (not an rlwb task nor a registered Gymnasium env){hint}"
