"""Pixel observations: the engine option, frame stacks and offscreen rendering of MuJoCo
members.

``make_engine(task, n, observation="pixels", image_size=84, frame_stack=3, camera=None)``
makes the observation a uint8 ``[N, 3 * frame_stack, H, W]`` tensor: the member's last
``frame_stack`` RGB frames, oldest first along the channels (frame j in channels
``3j..3j+2``, as TD-MPC's and DrQ's frame-stack wrappers concatenate them).
``observation="both"`` keeps that observation and adds the task's state vector beside it
(``info["state"]`` for the returned observations, ``info["final_state"]`` for
``final_obs``, ``engine.state_obs`` for the current ones). Why pixels stay *the*
observation in ``"both"`` rather than a flat or dict layout: every agent that reads
images keeps the image tensor contract unchanged, and one that also wants the state
(asymmetric actor-critic, debugging) reads it from a documented place; a flat
concatenation of uint8 pixels with float states would force one dtype on both.

Frame stacks: a reset (and an autoreset) fills the member's stack with copies of its
first frame, as those wrappers do. ``set_state`` re-renders the loaded members and
*refills* their stacks the same way: a state row holds physics, not images, so a member
restored from a state starts its stack like a reset. Rollouts restore stacks exactly (they
are part of the rollout snapshot), and so do engine checkpoints (``state_dict`` keeps the
observation). With ``action_repeat=k`` a frame is rendered once per engine step, after the
k task steps (the frame stack holds engine-step frames, as TD-MPC's wrappers stack them).

Rendering (the ``mujoco`` backend) is one :class:`MemberRenderer` per core: its own OpenGL
context (``MUJOCO_GL``: EGL by default, OSMesa as the fallback), its own copy of the model
and an ``MjData`` the member's state is loaded into (``mj_setState``, then
``mj_fwdPosition``: positions, frames and cameras of that state), then
``mjv_updateScene`` + ``mjr_render`` + ``mjr_readPixels`` as dm_control's
``physics.render`` and Gymnasium's ``rgb_array`` render do. The renderers live in forked
render workers beside the caller (the engine's state rows to render are staged in shared
memory, the frames come back through it), not in threads: Mesa's CPU rasterizer
(llvmpipe) serves all contexts of a process through one rasterizer behind one lock, so two
render threads ran at 1.1x one thread's rate (measured), while two processes ran at 2x.
A process forked after its parent made a context with llvmpipe's helper threads hangs in
its first render (Mesa's state is copied without its threads), so importing rlwb sets
``LP_NUM_THREADS=0`` unless the user set it, and :func:`render_workers_allowed` says when a
fork is safe; otherwise members render on threads of this process.

The ``gym`` backend renders through each member's own ``env.render()``
(``render_mode="rgb_array"``): Gymnasium's MuJoCo envs at the image size, dm_control's
through shimmy with ``physics.render``; other envs render at a size of their own and are
refused. The ``warp`` and ``torch`` backends refuse pixels with one line.

Cameras: DMC tasks use camera id 0, quadruped 2 (TD-MPC's choice per domain); Gymnasium
MuJoCo tasks use Gymnasium's default ``rgb_array`` camera: the free camera looking at the
median geom position at distance ``model.stat.extent``, then the env's
``default_camera_config``. Gymnasium takes that median from the state of its first render
(after its first reset); rlwb takes it from the model's initial pose, so every member sees
the same camera. ``camera=`` takes a camera id or name of the model (-1: the free camera).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlwb.errors import ConfigError

# offscreen rendering without a display (as the rlwb command): dm_control and Gymnasium
# read this when they first render; a user's own choice wins
os.environ.setdefault("MUJOCO_GL", "egl")


def _display_open() -> bool:
    """Whether this process has opened an EGL display (MuJoCo's or dm_control's, which opens
    its own on import) or loaded dm_control's OSMesa renderer: a Mesa screen exists."""
    mujoco_egl = sys.modules.get("mujoco.egl")
    return getattr(mujoco_egl, "EGL_DISPLAY", None) is not None or any(
        name in sys.modules
        for name in (
            "dm_control._render.pyopengl.egl_renderer",
            "dm_control._render.pyopengl.osmesa_renderer",
        )
    )


# A display opened before rlwb was imported may hold Mesa helper threads, so no render
# worker is forked from this process then (see render_workers_allowed)
_GL_LOADED_BEFORE = _display_open()
# Mesa's software rasterizer (llvmpipe, the CPU EGL/OSMesa driver) shares one rasterizer
# per process among all contexts, behind one lock: render threads of one process take
# turns, and its own helper threads (one per core by default) are lost by a fork, which
# then hangs in its first render. rlwb parallelises across members with forked render
# workers instead, each rendering on one core: measured on cheetah-run at 84 px, 18.5 CPU ms
# per frame with no helper threads against 23.9 with two. A user's own setting wins (then
# members render on threads of one process).
if "LP_NUM_THREADS" not in os.environ:
    os.environ["LP_NUM_THREADS"] = "0"
    os.environ["RLWB_DEFAULT_LP_NUM_THREADS"] = "1"  # child processes inherit both
LP_THREADS_SET_BY_RLWB = os.environ.get("RLWB_DEFAULT_LP_NUM_THREADS") == "1"
"""Whether ``LP_NUM_THREADS`` is rlwb's default, not the user's (benchmarks give peers
Mesa's own)."""
_contexts = {"made": False, "forkable": True}  # what this process's contexts allow

OBSERVATION_MODES = ("state", "pixels", "both")
PIXEL_OPTIONS = ("observation", "image_size", "frame_stack", "camera")


@dataclass(frozen=True)
class PixelOptions:
    """A validated pixel observation setting (``make_engine`` keywords)."""

    observation: str = "pixels"
    image_size: int = 84
    frame_stack: int = 3
    camera: int | str | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3 * self.frame_stack, self.image_size, self.image_size)


def parse_options(
    observation: str = "state",
    image_size: Any = 84,
    frame_stack: Any = 3,
    camera: Any = None,
) -> PixelOptions | None:
    """The pixel options, or None for state observations; a bad value is one
    :class:`ConfigError` line."""
    if observation not in OBSERVATION_MODES:
        raise ConfigError(
            f"observation must be one of {', '.join(map(repr, OBSERVATION_MODES))}, "
            f"got {observation!r}"
        )
    for name, value in (("image_size", image_size), ("frame_stack", frame_stack)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
    if camera is not None and (isinstance(camera, bool) or not isinstance(camera, (int, str))):
        raise ConfigError(f"camera must be a camera id or name, got {camera!r}")
    if observation == "state":
        if (image_size, frame_stack, camera) != (84, 3, None):
            raise ConfigError(
                "image_size, frame_stack and camera apply to observation='pixels' or 'both'"
            )
        return None
    return PixelOptions(observation, image_size, frame_stack, camera)


class FrameStack:
    """Every member's current frame stack (``stack``, uint8 ``[N, 3k, H, W]``) and, with
    ``observation="both"``, its state observation (``state``). Updates replace the tensors
    (never write into them), so a tensor handed out (an observation, a snapshot) stays as
    it was."""

    def __init__(self, options: PixelOptions, num_envs: int, device: torch.device) -> None:
        self.options = options
        self.k = options.frame_stack
        self.stack = torch.zeros((num_envs, *options.shape), dtype=torch.uint8, device=device)
        self.state: torch.Tensor | None = None
        self.all = torch.arange(num_envs, device=device)

    @property
    def with_state(self) -> bool:
        return self.options.observation == "both"

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.stack, self.state

    def restore(self, snapshot: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        self.stack, self.state = snapshot

    def _put(self, name: str, members: torch.Tensor | None, rows: torch.Tensor) -> None:
        old = getattr(self, name)
        if members is None:
            setattr(self, name, rows)
            return
        if old is None:
            old = rows.new_zeros((len(self.all), *rows.shape[1:]))
        setattr(self, name, old.index_put((members,), rows.to(old.dtype)))

    def fill(self, frames: torch.Tensor, members: torch.Tensor | None) -> torch.Tensor:
        """Start the stacks of ``members`` (None: all) from ``frames`` ``[K, 3, H, W]``."""
        rows = frames.repeat(1, self.k, 1, 1)
        self._put("stack", members, rows)
        return rows

    def push(self, frames: torch.Tensor, members: torch.Tensor | None) -> torch.Tensor:
        """Append ``frames`` to the stacks of ``members`` (None: all), dropping the oldest."""
        old = self.stack if members is None else self.stack[members]
        rows = torch.cat([old[:, 3:], frames], dim=1)
        self._put("stack", members, rows)
        return rows

    def set_state(self, state_obs: torch.Tensor, members: torch.Tensor | None) -> None:
        if self.with_state:
            self._put("state", members, state_obs)


# ------------------------------------------------------------------ MuJoCo rendering
def _gl_context(width: int, height: int) -> Any:
    """An offscreen OpenGL context: the backend ``MUJOCO_GL`` names (EGL when unset), and
    OSMesa when EGL cannot start here."""
    chosen = os.environ.get("MUJOCO_GL", "egl").lower() or "egl"
    order = [chosen] + (["osmesa"] if chosen == "egl" else [])
    errors = []
    for name in order:
        try:
            if name == "egl":
                from mujoco.egl import GLContext
            elif name == "osmesa":
                from mujoco.osmesa import GLContext
            elif name == "glfw":
                from mujoco.glfw import GLContext
            else:
                raise ConfigError(f"MUJOCO_GL={name!r} cannot render offscreen here")
            return GLContext(width, height)
        except Exception as exc:  # noqa: BLE001 - reported below, in one line
            errors.append(f"{name}: {type(exc).__name__}: {exc}".strip())
    raise ConfigError(f"no offscreen OpenGL context for pixel observations ({'; '.join(errors)})")


def _note_context() -> None:
    """Record, for :func:`render_workers_allowed`, that this process now holds a context,
    and whether a fork keeps it usable: Mesa's software rasterizer without helper threads."""
    try:
        from OpenGL import GL

        renderer = (GL.glGetString(GL.GL_RENDERER) or b"").decode(errors="replace")
    except Exception:  # noqa: BLE001 - unknown driver: never fork after it
        renderer = ""
    software = "llvmpipe" in renderer or "softpipe" in renderer
    _contexts["made"] = True
    if not (software and os.environ.get("LP_NUM_THREADS") == "0"):
        _contexts["forkable"] = False


def render_workers_allowed() -> tuple[bool, str]:
    """Whether members may render in processes forked from this one now, and why not.

    A fork is safe before this process has any GL context, and after it only while every
    context it made is llvmpipe's without helper threads (``LP_NUM_THREADS=0``, rlwb's
    default): a forked worker's first render hangs when the parent's rasterizer threads
    are missing (measured) and other drivers make no promise either."""
    if _GL_LOADED_BEFORE:
        return False, "a GL display was opened before rlwb was imported"
    if _contexts["made"] and not _contexts["forkable"]:
        return False, "this process holds a GL context a forked worker cannot share"
    if os.environ.get("LP_NUM_THREADS") != "0" and _display_open():
        return False, "LP_NUM_THREADS is set and a GL context may exist"
    return True, ""


def gymnasium_camera_config(gym_id: str) -> dict[str, Any]:
    """The ``default_camera_config`` Gymnasium's env of ``gym_id`` renders with ({} when
    it has none)."""
    import gymnasium as gym

    try:
        entry = gym.spec(gym_id).entry_point
    except Exception:  # noqa: BLE001 - not registered: no configuration
        return {}
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        import importlib

        entry = getattr(importlib.import_module(module), attr)
    import inspect

    param = inspect.signature(entry.__init__).parameters.get("default_camera_config")
    if param is None or param.default is inspect.Parameter.empty or param.default is None:
        return {}
    return dict(param.default)


def make_camera(model: Any, camera: int | str | dict[str, Any]) -> Any:
    """An ``MjvCamera`` for ``camera``: a model camera id or name (-1: MuJoCo's default
    free camera, as dm_control's), or a dict: Gymnasium's configured free camera (keys of
    ``MjvCamera``, applied over lookat = median geom position of the initial pose and
    distance = ``model.stat.extent``)."""
    import mujoco

    cam = mujoco.MjvCamera()
    if isinstance(camera, dict):
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.fixedcamid = -1
        cam.lookat[:] = np.median(data.geom_xpos, axis=0)
        cam.distance = model.stat.extent
        for key, value in camera.items():
            if isinstance(value, np.ndarray):
                getattr(cam, key)[:] = value
            else:
                setattr(cam, key, value)
        return cam
    if isinstance(camera, str):
        cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ConfigError(f"camera {camera!r} is not in the model; it has: {names}")
        camera = cam_id
    if not -1 <= camera < model.ncam:
        raise ConfigError(f"camera id {camera} is out of range [-1, {model.ncam}) for this model")
    if camera == -1:
        mujoco.mjv_defaultFreeCamera(model, cam)
    else:
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = camera
    return cam


class MemberRenderer:
    """Renders members of one model from their state rows, in one thread (its own GL
    context, model copy and ``MjData``)."""

    def __init__(self, model: Any, size: int, camera: Any, state_spec: int, task: Any) -> None:
        import copy

        import mujoco

        if size > model.vis.global_.offwidth or size > model.vis.global_.offheight:
            raise ConfigError(
                f"image_size {size} exceeds the model's offscreen buffer "
                f"({model.vis.global_.offwidth}x{model.vis.global_.offheight})"
            )
        self.model = copy.copy(model)  # per-member model changes (targets) stay here
        # an offscreen buffer of the image's size: the same pixels (the image is its
        # corner of any larger buffer), less to clear and resolve per frame
        self.model.vis.global_.offwidth = self.model.vis.global_.offheight = size
        self.data = mujoco.MjData(self.model)
        self.camera, self.spec, self.task = make_camera(self.model, camera), state_spec, task
        self.context = _gl_context(size, size)
        self.context.make_current()
        _note_context()
        self.scene = mujoco.MjvScene(self.model, maxgeom=10000)
        self.option = mujoco.MjvOption()
        self.perturb = mujoco.MjvPerturb()
        self.mjr = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.mjr)
        self.rect = mujoco.MjrRect(0, 0, size, size)
        self.flipped = np.empty((size, size, 3), dtype=np.uint8)

    def render(self, state: np.ndarray, out: np.ndarray) -> None:
        """Load ``state`` and write its ``[H, W, 3]`` frame into ``out``."""
        import mujoco

        model, data = self.model, self.data
        mujoco.mj_setState(model, data, state, self.spec)
        place = getattr(self.task, "place_render_targets", None)
        if place is not None:
            place(model, data)
        mujoco.mj_fwdPosition(model, data)
        self.context.make_current()
        mujoco.mjv_updateScene(model, data, self.option, self.perturb, self.camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self.scene)  # fmt: skip
        mujoco.mjr_render(self.rect, self.scene, self.mjr)
        mujoco.mjr_readPixels(self.flipped, None, self.rect, self.mjr)
        out[:] = self.flipped[::-1]

    def close(self) -> None:
        self.mjr.free()
        self.context.free()


_OPEN_POOLS: weakref.WeakSet = weakref.WeakSet()
_closing_at_exit: list[bool] = []


def _close_open_pools() -> None:
    """Free every renderer still open before the GL libraries' own exit hooks end the
    display (an engine never closed would otherwise print EGL errors at exit)."""
    for pool in list(_OPEN_POOLS):
        pool.close()


class RendererPool:
    """One :class:`MemberRenderer` per thread, made in that thread on first use."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.local = threading.local()
        self.made: list[MemberRenderer] = []
        self.lock = threading.Lock()
        _OPEN_POOLS.add(self)

    def get(self) -> MemberRenderer:
        renderer = getattr(self.local, "renderer", None)
        if renderer is None:
            renderer = self.local.renderer = self.factory()
            with self.lock:
                self.made.append(renderer)
            if not _closing_at_exit:  # registered after the GL library's hook: runs first
                _closing_at_exit.append(True)
                atexit.register(_close_open_pools)
        return renderer

    def close(self) -> None:
        with self.lock:
            made, self.made = self.made, []
        for renderer in made:
            try:
                renderer.close()
            except Exception:  # noqa: BLE001 - a context of a thread that is gone
                pass


def image_space(options: PixelOptions) -> Any:
    import gymnasium as gym

    return gym.spaces.Box(0, 255, options.shape, np.uint8)


def with_pixels(spec: Any, options: PixelOptions) -> Any:
    """``spec`` with the image observation shape and dtype."""
    return dataclasses.replace(spec, observation_shape=options.shape, observation_dtype=torch.uint8)
