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

A run on image observations (``observation="pixels"`` or ``"both"`` in its task arguments)
records on a one-member engine instead: the agent acts on the images it learned from and the
video is the newest frame of each observation, what the agent saw.

Tasks whose Gymnasium env returns a dict of observations (dm_control through shimmy) are
flattened in the engine's key order (``spec.observation_slices``, dm_control's own order),
and the engine options in the run's task arguments are applied here rather than handed to
Gymnasium: ``action_repeat=k`` repeats each action k times (every task step is a frame), and
``max_episode_steps`` counts engine steps. A failure while recording is a
:class:`VideoError` (one line), so a run or an evaluation never loses its result to a video.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")
# pygame (classic-control rendering) needs no window for rgb_array frames; without these it
# probes for a display and prints "XDG_RUNTIME_DIR is invalid" and a banner.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rlwb.errors import ConfigError, RlwbError  # noqa: E402
from rlwb.paths import check_output_file  # noqa: E402

StateReader = Callable[[int], "torch.Tensor | None"]
VIDEO_SUFFIXES = (".mp4", ".gif")
_BACKEND_ONLY = ("num_threads", "workers")  # the mujoco backend's options, not Gymnasium's


class VideoError(RlwbError):
    """A video could not be recorded; ``result`` keeps what was computed before it (e.g. an
    evaluation's ``(mean, std, returns)``) so that the caller can still report it."""

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


def check_video_path(path: str | os.PathLike[str]) -> pathlib.Path:
    """``path`` as a video file to write, or a one-line error (wrong suffix, missing or
    unwritable folder) before anything long runs."""
    return check_output_file(_video_suffix(path), "video")


def _video_suffix(path: str | os.PathLike[str]) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(f"video path must end in .mp4 or .gif, got {str(path)!r}")
    return path


def _split_options(task_kwargs: dict[str, Any] | None) -> tuple[dict[str, Any], int, int | None]:
    """(Gymnasium's env arguments, action repeat, time limit in engine steps): the engine's
    own options are not Gymnasium's."""
    from rlwb.engine import ENGINE_OPTIONS

    rest = {
        k: v for k, v in (task_kwargs or {}).items() if k not in (*ENGINE_OPTIONS, *_BACKEND_ONLY)
    }
    options = task_kwargs or {}
    return rest, int(options.get("action_repeat") or 1), options.get("max_episode_steps")


def _gym_id(task: str) -> str:
    from rlwb import tasks

    entry = tasks.find(task)
    gym_id = entry.gym_id if entry is not None and entry.gym_id else task
    tasks.register_gym_plugin(gym_id)  # dm_control/* ids appear once shimmy is imported
    return gym_id


def _open(task: str, task_kwargs: dict[str, Any] | None) -> Any:
    """Gymnasium's env of ``task`` rendering to arrays, or a clear error."""
    import gymnasium as gym

    from rlwb.envs.mujoco.log import quiet_known_warnings

    quiet_known_warnings()
    try:
        if _atari(task):  # EnvPool's Atari ids: Gymnasium's ALE with the engine's preprocessing
            from rlwb.engine.envpool_backend import gymnasium_twin

            return gymnasium_twin(task, "rgb_array", **_split_options(task_kwargs)[0])
        return gym.make(_gym_id(task), render_mode="rgb_array", **_split_options(task_kwargs)[0])
    except Exception as exc:  # gymnasium raises many kinds (bad id, bad kwargs, ...)
        raise RlwbError(f"cannot render {task!r} through Gymnasium: {exc}") from None


def _atari(task: str) -> bool:
    from rlwb import tasks
    from rlwb.engine.envpool_backend import is_atari_id

    return tasks.find(task) is None and is_atari_id(task)


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
    if (task_kwargs or {}).get("observation", "state") != "state":
        return  # the run's engine renders its videos: building it is the check
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


def flat_observation(obs: Any, order: Any = ()) -> np.ndarray:
    """One observation vector: a dict (dm_control through shimmy) concatenated in ``order``
    (the engine's ``observation_slices`` names), else in its own key order."""
    if not isinstance(obs, dict):
        return np.asarray(obs)
    keys = [k for k in order if k in obs] or list(obs)
    return np.concatenate([np.asarray(obs[k], dtype=np.float64).ravel() for k in keys])


def _act(agent: Any, obs: Any, state: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    obs = flat_observation(obs, getattr(agent.spec, "observation_slices", None) or ())
    batch = torch.as_tensor(obs, dtype=dtype, device=agent.device)[None]
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
    (planning agents also get ``state=``, see the module docstring); ``max_steps`` counts
    engine steps. Returns the frames and frames per second (for TensorBoard). Any failure is
    a :class:`VideoError`."""
    path = _video_suffix(path)
    try:
        frames, fps = _episode_frames(agent, task, seed, task_kwargs, max_steps, fps)
        _write(path, frames, fps)
    except RlwbError as exc:
        raise VideoError(str(exc)) from None
    except Exception as exc:  # a renderer or encoder failure must not end a run
        raise VideoError(f"video of {task!r} failed: {type(exc).__name__}: {exc}") from None
    return frames, fps


def _pixel_episode_frames(
    agent: Any,
    task: str,
    seed: int,
    task_kwargs: dict[str, Any],
    max_steps: int | None,
    fps: int | None,
) -> tuple[list[np.ndarray], int]:
    """A run on image observations: the agent acts on a one-member engine of the run's
    task and options (the images it learned from), and the video is the newest frame of
    each observation, what the agent saw."""
    from rlwb.agent import act_on
    from rlwb.engine import make_engine

    backend = getattr(agent.spec, "backend", "") or "auto"
    engine = make_engine(task, 1, backend=backend, seed=seed, **task_kwargs)
    try:
        obs = engine.reset(seed=seed)
        frames = [obs[0, -3:].permute(1, 2, 0).cpu().numpy()]
        for _ in range(max_steps or engine.max_episode_steps or 1000):
            with torch.no_grad():
                action = act_on(agent, engine, obs).to(engine.device)
            obs, _, terminated, truncated, info = engine.step(action)
            frames.append(info["final_obs"][0, -3:].permute(1, 2, 0).cpu().numpy())
            if bool(terminated[0] | truncated[0]):
                break
        return frames, fps or max(1, round(1 / engine.dt))
    finally:
        engine.close()


def _episode_frames(
    agent: Any,
    task: str,
    seed: int,
    task_kwargs: dict[str, Any] | None,
    max_steps: int | None,
    fps: int | None,
) -> tuple[list[np.ndarray], int]:
    if (task_kwargs or {}).get("observation", "state") != "state":
        return _pixel_episode_frames(agent, task, seed, dict(task_kwargs), max_steps, fps)
    import gymnasium as gym

    _, repeat, time_limit = _split_options(task_kwargs)
    env = _open(task, task_kwargs)
    try:
        state_of = _state_reader(agent, task, env)
        obs, _ = env.reset(seed=seed)
        frames = [_render(env, task)]
        limit = max_steps or time_limit or -(-(env.spec.max_episode_steps or 1000) // repeat)
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        low = torch.as_tensor(0 if discrete else env.action_space.low)
        high = torch.as_tensor(env.action_space.n - 1 if discrete else env.action_space.high)
        dtype = agent.spec.action_low.dtype
        done = False
        for t in range(limit):
            action = _act(agent, obs, state_of(t), dtype).to(low.dtype)
            action = torch.maximum(torch.minimum(action, high), low).numpy()
            action = int(action.reshape(-1)[0]) if discrete else action
            for _ in range(repeat):
                obs, _, terminated, truncated, _ = env.step(action)
                frames.append(env.render())
                done = terminated or truncated
                if done:
                    break
            if done:
                break
        fps = fps or _real_time_fps(env)
    finally:
        env.close()
    return frames, fps


def _real_time_fps(env: Any) -> int:
    """Frames per second of one task step (shimmy's dm_control envs state 10 whatever their
    control step)."""
    inner = getattr(env.unwrapped, "_env", None)
    if hasattr(inner, "control_timestep"):
        return max(1, round(1 / inner.control_timestep()))
    return int(env.metadata.get("render_fps") or 30)


def _write(path: pathlib.Path, frames: list[np.ndarray], fps: int) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(exist_ok=True)  # a run's videos/ folder; never a chain of new folders
    if path.suffix.lower() == ".mp4":
        imageio.mimsave(path, frames, fps=fps, macro_block_size=1)
    else:
        imageio.mimsave(path, frames, duration=1000 / fps)
