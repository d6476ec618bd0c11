"""Goal-conditioned tasks seen from outside: their named observation parts and task object.

A goal task's flat observation holds ``observation``, ``achieved_goal`` and
``desired_goal`` as column ranges (``observation_slices``: name -> ``(start, stop)``) and its
task object has ``compute_reward(achieved, desired)`` (batched, Gymnasium-Robotics'
signature without ``info``) and, for rlwb's own tasks, ``goal_reached(achieved, desired)``.
"""

from __future__ import annotations

from typing import Any

from rlwb import tasks
from rlwb.engine.base import EngineSpec
from rlwb.errors import ConfigError

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


def observation_slices(spec: EngineSpec, task: Any = None) -> dict[str, tuple[int, int]] | None:
    """``name -> (start, stop)`` columns of a goal observation: the engine spec's
    ``observation_slices`` where the engine provides it, else the task's attribute."""
    slices = getattr(spec, "observation_slices", None) or getattr(task, "observation_slices", None)
    if not slices:
        return None
    return {k: (int(a), int(b)) for k, (a, b) in dict(slices).items()}


def goal_task(spec: EngineSpec) -> Any:
    """The task object behind ``spec`` (for ``compute_reward``, ``goal_reached`` and true
    distances); a ConfigError if it is not a goal-conditioned rlwb task."""
    entry = tasks.find(spec.task_id)
    if entry is None:
        raise ConfigError(f"goal agents need an rlwb goal task; {spec.task_id!r} is not one")
    task = entry.build(**spec.task_kwargs)
    slices = observation_slices(spec, task)
    if slices is None or not set(GOAL_KEYS) <= set(slices) or not hasattr(task, "compute_reward"):
        raise ConfigError(
            f"{spec.task_id} is not goal-conditioned (no observation_slices/compute_reward); "
            "use a goal variant such as PointMaze-Open-Goal-v0"
        )
    return task
