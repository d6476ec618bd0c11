"""Evaluation videos: one deterministic episode rendered offscreen to an mp4.

The episode runs in Gymnasium's own env of the task (``render_mode="rgb_array"``), which
the engine's task definitions reproduce number for number, so every backend's policy
renders the same way without a renderer per backend. MuJoCo renders with EGL
(``MUJOCO_GL=egl``, set here unless the user chose another), which needs no display.

Agents that plan with the simulator (``needs_engine_state``: CEM-MPC) get the engine state
of the Gymnasium env at every step: on MuJoCo tasks it is read from the env's own
``MjData`` (:func:`rlwb.engine.state_from_mujoco`), the layout the ``mujoco`` and ``warp``
backends share, so they plan from exactly the state that is rendered. Other backends keep
states Gymnasium cannot give (torch tasks' own tensors), so those combinations fail with
one clear error before anything runs.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rlwb.errors import ConfigError, RlwbError  # noqa: E402

StateReader = Callable[[int], "torch.Tensor | None"]


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


def _state_reader(agent: Any, task: str, env: Any) -> StateReader:
    """``elapsed -> state[1, S]`` of the env for agents that plan with the engine state
    (None for the rest), or a clear error where the env cannot give one."""
    if not getattr(agent, "needs_engine_state", False):
        return lambda elapsed: None
    spec = agent.spec
    raw = env.unwrapped
    if spec.backend not in ("mujoco", "warp") or not hasattr(raw, "data"):
        raise RlwbError(
            f"cannot record a video of {type(agent).__name__} on {task!r} "
            f"({spec.backend or '?'} backend): it plans with the engine state, which videos "
            "can read only from Gymnasium's MuJoCo envs for the mujoco and warp backends"
        )
    from rlwb.engine import state_from_mujoco

    def read(elapsed: int) -> torch.Tensor:
        row = state_from_mujoco(raw.model, raw.data, elapsed)
        if spec.state_dim and row.shape[0] != spec.state_dim:
            raise RlwbError(
                f"cannot record a video of {type(agent).__name__} on {task!r}: Gymnasium's "
                f"model has {row.shape[0]} state columns, the engine's {spec.state_dim}"
            )
        return row[None].to(spec.device)

    return read


def _act(agent: Any, obs: Any, state: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    batch = torch.as_tensor(np.asarray(obs), dtype=dtype, device=agent.device)[None]
    with torch.no_grad():
        if state is None:
            return agent.act(batch, explore=False)[0].cpu()
        return agent.act(batch, explore=False, state=state)[0].cpu()


def record_video(
    agent: Any,
    task: str,
    path: str | os.PathLike[str],
    seed: int = 0,
    task_kwargs: dict[str, Any] | None = None,
    max_steps: int | None = None,
    fps: int | None = None,
) -> tuple[list[np.ndarray], int]:
    """Render one episode of ``agent.act(obs, explore=False)`` on ``task`` to ``path``
    (planning agents also get ``state=``, see the module docstring); returns the frames and
    frames per second (for TensorBoard)."""
    import imageio.v2 as imageio

    path = pathlib.Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ConfigError(f"video path must end in .mp4 or .gif, got {path.name!r}")
    env = _open(task, task_kwargs)
    try:
        state_of = _state_reader(agent, task, env)
        obs, _ = env.reset(seed=seed)
        frames = [_render(env, task)]
        limit = max_steps or env.spec.max_episode_steps or 1000
        low = torch.as_tensor(env.action_space.low)
        high = torch.as_tensor(env.action_space.high)
        dtype = agent.spec.action_low.dtype
        for t in range(limit):
            action = _act(agent, obs, state_of(t), dtype).to(low.dtype)
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
