"""Task registry: which tasks exist, which backends can run them, and how to build them.

A task id is Gymnasium's (``HalfCheetah-v5``, ``Pendulum-v1``) where one exists, so the
same string works on the ``gym`` backend as the oracle. Definitions live in ``rlwb.envs``
and register themselves on import; nothing heavy happens at registration.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any

from rlwb.errors import UnknownTaskError


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

    def build(self, **kwargs: Any) -> Any:
        module_name, _, attr = self.loader.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        return cls(**{**self.defaults, **kwargs})


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


def unknown_task_message(task_id: str) -> str:
    known = sorted(all_tasks())
    close = difflib.get_close_matches(task_id, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known tasks: {', '.join(known)}"
    return f"unknown task id {task_id!r} (not an rlwb task nor a registered Gymnasium env){hint}"
