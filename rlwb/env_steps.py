"""Env steps as papers count them: simulator control steps, agent steps x action repeat.

With ``action_repeat=k`` (an engine option in ``task_kwargs``) one agent step is ``k``
simulator steps. DMControl papers (TD-MPC, DrQ, Dreamer) state budgets and draw curves in
simulator steps, so a budget may be given that way (``TrainConfig.total_env_steps``) and a
run's TensorBoard steps and progress lines count simulator steps: agent steps x
``step_scale``. A run records its ``step_scale`` (``config.yaml`` and checkpoints), so a
resumed run keeps the axis it started with, and readers of its events know the unit.

The runner's cadences (``learning_starts``, ``eval_every``, ``checkpoint_every``,
``log_every``), its checkpoint names and ``total_steps`` stay in agent steps: they are what
the loop counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rlwb.errors import ConfigError
from rlwb.logger import RunLogger


def action_repeat_of(task_kwargs: Mapping[str, Any]) -> int:
    """Simulator steps per agent step that ``task_kwargs`` ask of the engine (default 1)."""
    repeat = task_kwargs.get("action_repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigError(f"action_repeat must be an int >= 1, got {repeat!r}")
    return repeat


def agent_steps_for(env_steps: int, action_repeat: int) -> int:
    """The agent steps that cover ``env_steps`` simulator steps (rounded up)."""
    return math.ceil(env_steps / action_repeat)


class EnvStepLogger(RunLogger):
    """A :class:`RunLogger` that is handed agent steps and writes agent steps x ``scale``:
    TensorBoard's x axis, the progress bar and lines all count env steps."""

    def __init__(self, log_dir: Any, total_steps: int, start_step: int = 0, *,
                 scale: int = 1, **kwargs: Any) -> None:  # fmt: skip
        self.scale = scale
        super().__init__(log_dir, total_steps * scale, start_step * scale, **kwargs)
        if scale > 1:
            self.print(f"steps shown and logged are env steps: agent steps x {scale}")

    def x(self, step: int) -> int:
        """The env step of agent step ``step``."""
        return step * self.scale

    def scalar(self, tag: str, value: float, step: int) -> None:
        super().scalar(tag, value, self.x(step))

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        super().scalars(prefix, values, self.x(step))

    def episodes(self, returns: list[float], lengths: list[int], step: int) -> None:
        super().episodes(returns, lengths, self.x(step))

    def video(self, tag: str, frames: list[Any], step: int, fps: int) -> None:
        super().video(tag, frames, self.x(step), fps)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        super().figure(tag, figure, self.x(step))

    def advance(self, step: int, force: bool = False) -> None:
        super().advance(self.x(step), force)

    def restart_rate(self, step: int) -> None:
        super().restart_rate(self.x(step))

    def phase(self, what: str, done: int, total: int, step: int) -> None:
        super().phase(what, done, total, self.x(step))
