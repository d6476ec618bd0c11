"""Evaluation videos: one deterministic episode rendered offscreen to an mp4.

The episode runs in Gymnasium's own env of the task (``render_mode="rgb_array"``), which
the engine's task definitions reproduce number for number, so every backend's policy
renders the same way without a renderer per backend. MuJoCo renders with EGL
(``MUJOCO_GL=egl``, set here unless the user chose another), which needs no display.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rlwb.errors import ConfigError, RlwbError  # noqa: E402


def _gym_id(task: str) -> str:
    from rlwb import tasks

    entry = tasks.find(task)
    gym_id = entry.gym_id if entry is not None and entry.gym_id else task
    tasks.register_gym_plugin(gym_id)  # dm_control/* ids appear once shimmy is imported
    return gym_id


def _open(task: str, task_kwargs: dict[str, Any] | None) -> Any:
    """Gymnasium's env of ``task`` rendering to arrays, or a clear error."""
    import gymnasium as gym

    try:
        return gym.make(_gym_id(task), render_mode="rgb_array", **(task_kwargs or {}))
    except Exception as exc:  # gymnasium raises many kinds (bad id, bad kwargs, ...)
        raise RlwbError(f"cannot render {task!r} through Gymnasium: {exc}") from None


def _render(env: Any, task: str) -> np.ndarray:
    try:
        return env.render()
    except Exception as exc:  # missing pygame, no EGL, ...
        if "pygame" in str(exc):  # Gymnasium's own hint names an extra pip ignores
            raise RlwbError(
                f"cannot render {task!r}: pygame is missing; "
                'pip install "gymnasium[classic-control]"'
            ) from None
        raise RlwbError(f"cannot render {task!r} offscreen here: {exc}") from None


def check_renderable(task: str, task_kwargs: dict[str, Any] | None = None) -> None:
    """Fail early (before a long run) if ``task`` cannot be rendered here."""
    env = _open(task, task_kwargs)
    try:
        env.reset(seed=0)
        _render(env, task)
    finally:
        env.close()


def record_video(
    agent: Any,
    task: str,
    path: str | os.PathLike[str],
    seed: int = 0,
    task_kwargs: dict[str, Any] | None = None,
    max_steps: int | None = None,
    fps: int | None = None,
) -> tuple[list[np.ndarray], int]:
    """Render one episode of ``agent.act(obs, explore=False)`` on ``task`` to ``path``;
    returns the frames and frames per second (for TensorBoard)."""
    import imageio.v2 as imageio

    path = pathlib.Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ConfigError(f"video path must end in .mp4 or .gif, got {path.name!r}")
    env = _open(task, task_kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        frames = [_render(env, task)]
        limit = max_steps or env.spec.max_episode_steps or 1000
        low = torch.as_tensor(env.action_space.low)
        high = torch.as_tensor(env.action_space.high)
        dtype = agent.spec.action_low.dtype
        for _ in range(limit):
            batch = torch.as_tensor(np.asarray(obs), dtype=dtype, device=agent.device)[None]
            with torch.no_grad():
                action = agent.act(batch, explore=False)[0].cpu().to(low.dtype)
            action = torch.maximum(torch.minimum(action, high), low).numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append(env.render())
            if terminated or truncated:
                break
        fps = fps or int(env.metadata.get("render_fps") or 30)
    finally:
        env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp4":
        imageio.mimsave(path, frames, fps=fps, macro_block_size=1)
    else:
        imageio.mimsave(path, frames, duration=1000 / fps)
    return frames, fps
