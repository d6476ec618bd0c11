"""Gymnasium-Robotics' PointMaze and AntMaze as rlwb goal tasks on the ``gym`` backend
(``pip install -e ".[robotics]"``: gymnasium-robotics 1.4.2).

The ``gym`` backend runs the envs themselves and flattens their ``Dict`` observations
(``gymnasium.spaces.flatten``: keys in sorted order, so ``achieved_goal``, then
``desired_goal``, then ``observation``). :class:`RoboticsMaze` is the task object goal
agents read: ``observation_slices`` of that flat vector and the envs' own reward and
success rules in torch (sparse: 1 within 0.45 of the goal, else 0; dense: ``exp(-d)``),
so hindsight relabelling needs no numpy round trip. Registered only when
gymnasium-robotics is installed.
"""

from __future__ import annotations

from typing import Any

import torch

from rlwb.errors import ConfigError
from rlwb.tasks import TaskEntry, register

SUCCESS_DISTANCE = 0.45  # gymnasium_robotics.envs.maze.maze_v4.MazeEnv.compute_reward
IDS = (
    "PointMaze_Open-v3", "PointMaze_UMaze-v3", "PointMaze_Medium-v3", "PointMaze_Large-v3",
    "AntMaze_UMaze-v5", "AntMaze_Medium-v5", "AntMaze_Large-v5",
)  # fmt: skip


class RoboticsMaze:
    """Goal-task view of a Gymnasium-Robotics maze env (built once to read its spaces)."""

    def __init__(
        self,
        gym_id: str,
        reward_type: str = "sparse",
        continuing_task: bool = True,
        **env_kwargs: Any,
    ) -> None:
        """``continuing_task=False`` ends an episode on success (the env's own option, passed
        to ``gymnasium.make``; its default ``True`` keeps going after the goal)."""
        import gymnasium as gym

        if reward_type not in ("sparse", "dense"):
            raise ConfigError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
        self.gym_id, self.reward_type = gym_id, reward_type
        env_kwargs.pop("max_episode_steps", None)
        env_kwargs["continuing_task"] = continuing_task
        env = gym.make(gym_id, reward_type=reward_type, **env_kwargs)
        space = env.observation_space
        env.close()
        self.observation_slices: dict[str, tuple[int, int]] = {}
        start = 0
        for key, sub in space.spaces.items():  # flatten's order
            size = gym.spaces.flatdim(sub)
            self.observation_slices[key] = (start, start + size)
            start += size

    def goal_reached(self, achieved: torch.Tensor, desired: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(achieved - desired, dim=-1) <= SUCCESS_DISTANCE

    def compute_reward(self, achieved: torch.Tensor, desired: torch.Tensor) -> torch.Tensor:
        if self.reward_type == "dense":
            return torch.exp(-torch.linalg.vector_norm(achieved - desired, dim=-1))
        return self.goal_reached(achieved, desired).to(achieved.dtype)


def register_robotics() -> bool:
    """Register the maze ids with Gymnasium and rlwb if gymnasium-robotics is installed."""
    import contextlib
    import io
    import warnings

    try:
        import gymnasium as gym

        # Its import prints a notice about Adroit hand rewards on stderr: not ours to show.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import gymnasium_robotics
    except ImportError:
        return False
    gym.register_envs(gymnasium_robotics)
    for gym_id in IDS:
        register(
            TaskEntry(
                id=gym_id,
                backends=(),
                loader="rlwb.envs.robotics:RoboticsMaze",
                gym_id=gym_id,
                family="robotics",
                description=f"Gymnasium-Robotics {gym_id} (goal task, gym backend)",
                defaults={"gym_id": gym_id},
            )
        )
    return True


register_robotics()
