"""Contract of a MuJoCo task, shared by the ``mujoco`` (CPU) and ``warp`` (GPU) backends.

A task reproduces one Gymnasium MuJoCo v5 env from the physics state, vectorized in torch:
the backend steps the physics (``frame_skip`` MuJoCo steps per env step, with the action
written to ``ctrl``), gathers the MjData arrays the task names in ``fields`` into a
:class:`PhysicsView` of ``[B, ...]`` float64 tensors, and the task turns those into
observation, reward (with components) and termination. Reset noise is drawn from the
engine's ``torch.Generator`` with Gymnasium's distributions. (The ``warp`` backend
simulates in float32 and casts the fields to float64 for the view, so tasks never see the
difference; Warp's ``Data`` arrays have the same per-member shapes as ``MjData``'s.)

Backend protocol, in order:

1. ``task.setup(model)`` once with the ``mujoco.MjModel`` (tasks read constants such as body
   masses or body ids here; nothing backend-specific is kept).
2. Reset: ``qpos, qvel = task.reset_state(init_qpos, init_qvel, n, generator)``; the backend
   does what Gymnasium's ``reset`` does (``mj_resetData``, set qpos/qvel, ``mj_forward``)
   and gathers the view.
3. Step: ``pre`` is the view gathered after the previous step or reset restricted to
   ``pre_fields`` (a backend may simply keep the last view: the fields only change by
   stepping). The backend writes ``ctrl``, runs ``frame_skip`` steps, calls
   ``mj_rnePostConstraint`` when ``needs_rne_post`` (Gymnasium calls it after every env
   step; it only changes ``cacc``/``cfrc_int``/``cfrc_ext``), gathers ``post`` and calls
   ``task.evaluate(pre, post, action, dt)``.

View tensors may be strided views of a backend's buffers (e.g. qpos as columns of a state
array) and are overwritten by the next step: tasks read them and return new tensors.

A task with ``numpy_math = True`` writes ``observation``/``reward``/``terminated`` against
:mod:`rlwb.envs.mujoco.arrays`, so the same code also runs on views of float64 numpy
arrays (``action`` then a float64 array too); the ``mujoco`` backend evaluates such tasks
in numpy, where a small batch costs a fraction of torch's per-op dispatch. Their
``reset_state`` is written the same way: the ``mujoco`` backend passes ``init_qpos`` and
``init_qvel`` as numpy arrays and gets numpy arrays back; the draws still come from the
engine's torch generator (:func:`uniform`, :func:`normal`), so they are the same numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from rlwb.envs.mujoco.arrays import ops

# Fields a backend must be able to provide. Names and shapes follow mujoco.MjData
# (per member): qpos[nq], qvel[nv], xpos[nbody, 3], xipos[nbody, 3], cinert[nbody, 10],
# cvel[nbody, 6], qfrc_actuator[nv], cfrc_ext[nbody, 6], site_xpos[nsite, 3], ctrl[nu],
# qfrc_constraint[nv], ten_length[ntendon], ten_velocity[ntendon].
# cfrc_ext needs mj_rnePostConstraint after the step, as Gymnasium calls it.
# dm_control tasks (envs/dmc) also read xmat[nbody, 9], sensordata[nsensordata],
# geom_xpos[ngeom, 3], geom_xmat[ngeom, 9], site_xmat[nsite, 9] and subtree_com[nbody, 3].
KNOWN_FIELDS = (
    "qpos", "qvel", "xpos", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext",
    "site_xpos", "ctrl", "qfrc_constraint", "ten_length", "ten_velocity",
    # --- fields the dm_control tasks read as well
    "xmat", "sensordata", "geom_xpos", "site_xmat", "subtree_com", "act", "userdata",
    "geom_xmat",
)  # fmt: skip

# Fields that are only up to date after mj_rnePostConstraint.
RNE_POST_FIELDS = ("cfrc_ext", "cfrc_int", "cacc")

PhysicsView = dict[str, torch.Tensor]  # or dict[str, np.ndarray] for numpy_math tasks


def gymnasium_asset(name: str) -> str:
    """Path of a model XML shipped with Gymnasium (the same file its envs load)."""
    import gymnasium.envs.mujoco as gm

    path = Path(gm.__file__).parent / "assets" / name
    if not path.exists():
        raise FileNotFoundError(f"Gymnasium asset {name!r} not found at {path}")
    return str(path)


def resolve_xml(xml_file: str) -> str:
    """Gymnasium's rule: a path starting with ``/``, ``.`` or ``~`` is a file, else an asset."""
    if xml_file.startswith(("/", ".", "~")):
        path = Path(xml_file).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"model file {xml_file!r} does not exist")
        return str(path)
    return gymnasium_asset(xml_file)


def body_id(model, name: str) -> int:  # noqa: ANN001 - mujoco.MjModel
    """Index of a body by name (raises a clear error when the model lacks it)."""
    import mujoco

    idx = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if idx < 0:
        raise ValueError(f"model has no body named {name!r}")
    return int(idx)


def uniform(
    generator: torch.Generator, shape: tuple[int, ...], low: float, high: float, like: Any
) -> Any:
    """``U[low, high)`` float64 samples drawn on the generator's device, moved next to
    ``like`` (so a CUDA generator and a CPU generator both work); a numpy ``like`` gets a
    numpy array of the same draws (the arithmetic is elementwise: bit-identical)."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device)
    if isinstance(like, np.ndarray):
        return low + (high - low) * u.numpy()
    return (low + (high - low) * u).to(like.device)


def normal(generator: torch.Generator, shape: tuple[int, ...], like: Any) -> Any:
    """Standard normal float64 samples drawn on the generator's device (numpy for a numpy
    ``like``, as :func:`uniform`)."""
    z = torch.randn(shape, generator=generator, dtype=torch.float64, device=generator.device)
    return z.numpy() if isinstance(like, np.ndarray) else z.to(like.device)


def noisy_reset(
    init_qpos: Any,
    init_qvel: Any,
    n: int,
    generator: torch.Generator,
    scale: float,
    qvel_noise: Literal["uniform", "normal"],
) -> tuple[Any, Any]:
    """Gymnasium's usual ``reset_model``: ``qpos + U[-scale, scale]``, then ``qvel`` plus
    either ``U[-scale, scale]`` or ``scale * N(0, 1)`` (drawn in that order); in the
    library of ``init_qpos`` (torch, or numpy from the ``mujoco`` backend)."""
    qpos = init_qpos + uniform(generator, (n, init_qpos.shape[-1]), -scale, scale, init_qpos)
    nv = init_qvel.shape[-1]
    if qvel_noise == "uniform":
        noise = uniform(generator, (n, nv), -scale, scale, init_qvel)
    else:
        noise = scale * normal(generator, (n, nv), init_qvel)
    return qpos, init_qvel + noise


def in_open_range(x: Any, bounds: tuple[float, float]) -> Any:
    """``low < x < high`` elementwise, Gymnasium's healthy-range test (strict bounds)."""
    low, high = bounds
    return (x > low) & (x < high)


@dataclass
class MujocoTask:
    """Base of every MuJoCo task definition; subclasses are dataclasses whose fields are
    Gymnasium's constructor arguments with Gymnasium's defaults.

    Subclasses set ``gym_id``, ``max_episode_steps``, ``fields`` (MjData arrays read after
    the step), ``pre_fields`` (arrays whose pre-step value the reward needs, e.g. qpos for
    the forward velocity; a subset of ``fields``) and implement the four methods.
    """

    xml_file: str = ""
    frame_skip: int = 5

    gym_id: ClassVar[str] = ""
    max_episode_steps: ClassVar[int | None] = 1000
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel")
    pre_fields: ClassVar[tuple[str, ...]] = ()
    # dm_control's Physics.step ends with mj_step1, so position- and velocity-dependent
    # fields (xpos, xmat, sensordata...) describe the state *after* the step; backends call
    # mj_step1 after the last mj_step of an env step when this is True.
    sync_after_step: ClassVar[bool] = False
    # observation/reward/terminated also run on numpy arrays (written against
    # rlwb.envs.mujoco.arrays); the mujoco backend then evaluates them in numpy.
    numpy_math: ClassVar[bool] = False
    # the forward pass after a reset or set_state runs with actuation disabled, as
    # dm_control's after_reset does (it shows where actuator states start non-zero)
    forward_without_actuation: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if isinstance(self.frame_skip, bool) or not isinstance(self.frame_skip, int):
            raise TypeError(f"frame_skip must be an int >= 1, got {self.frame_skip!r}")
        if self.frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {self.frame_skip}")

    @classmethod
    def argument_names(cls) -> list[str]:
        """Constructor arguments (for error messages on unknown task kwargs)."""
        return [f.name for f in dataclasses.fields(cls)]

    @property
    def needs_rne_post(self) -> bool:
        """Whether the backend must call ``mj_rnePostConstraint`` after stepping."""
        return any(f in RNE_POST_FIELDS for f in self.fields)

    def model_path(self) -> str:
        return resolve_xml(self.xml_file)

    def load_model(self, path: str):  # noqa: ANN201 - mujoco.MjModel
        """The compiled model (hook: dm_control tasks build theirs, e.g. with userdata
        slots that hold per-episode task state such as reacher's target)."""
        import mujoco

        return mujoco.MjModel.from_xml_path(path)

    def setup(self, model) -> None:  # noqa: ANN001, B027 - mujoco.MjModel; optional hook
        """Read model constants (body ids, masses) once, before any other call."""

    def render_camera(self) -> int | str | dict:
        """The camera of pixel observations: Gymnasium's ``rgb_array`` default, its free
        camera with the env's ``default_camera_config`` (see :mod:`rlwb.engine.pixels`)."""
        from rlwb.engine.pixels import gymnasium_camera_config

        return gymnasium_camera_config(self.gym_id) if self.gym_id else -1

    def observation_dim(self, model) -> int:  # noqa: ANN001 - mujoco.MjModel
        """Length of the observation vector for this model."""
        raise NotImplementedError

    def observation(self, view: PhysicsView) -> torch.Tensor:
        """``[B, obs_dim]`` observation from the post-step physics view."""
        raise NotImplementedError

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reward ``[B]`` and its components (Gymnasium's ``info`` keys), float64."""
        raise NotImplementedError

    def terminated(self, post: PhysicsView) -> torch.Tensor:
        """``[B]`` bool: Gymnasium's ``terminated`` (unhealthy), never the time limit."""
        qpos = post["qpos"]
        return ops(qpos).false_rows(qpos)

    def evaluate(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(obs, reward, terminated, info)`` after a step; backends call this."""
        reward, info = self.reward(pre, post, action, dt)
        return self.observation(post), reward, self.terminated(post), info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(qpos[n, nq], qvel[n, nv])`` float64 drawn as Gymnasium's ``reset_model`` does.
        A task may return a third tensor ``userdata[n, nuserdata]`` (per-episode task state
        kept in MjData.userdata, which the ``mujoco`` backend's state includes) and a
        fourth ``act[n, na]`` (initial actuator states; the default is MuJoCo's zeros)."""
        raise NotImplementedError


def control_cost(action: Any, weight: float) -> Any:
    """``weight * sum(action**2)`` per member, in float64 as Gymnasium computes it."""
    xp = ops(action)
    a = xp.as_float64(action)
    return weight * xp.sum(a * a, -1)


def forward_velocity(
    pre: PhysicsView, post: PhysicsView, dt: float, coord: int = 0
) -> torch.Tensor:
    """``(qpos[coord] after - before) / dt``: Gymnasium's x velocity of the root."""
    return (post["qpos"][:, coord] - pre["qpos"][:, coord]) / dt


def positions_velocities(view: PhysicsView, skip: int, clip_velocity: float | None = None) -> Any:
    """``[qpos[skip:], qvel]`` (velocities optionally clipped): the locomotion observation."""
    qvel = view["qvel"]
    xp = ops(qvel)
    if clip_velocity is not None:
        qvel = xp.clip(qvel, -clip_velocity, clip_velocity)
    return xp.cat([view["qpos"][:, skip:], qvel], 1)


@dataclass
class LocomotionTask(MujocoTask):
    """Shared shape of HalfCheetah, Hopper, Walker2d and Swimmer: observation
    ``[qpos[skip:], qvel]``, reward ``forward_weight * x_velocity - ctrl_cost``, uniform
    qpos reset noise."""

    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 0.1
    reset_noise_scale: float = 0.1
    exclude_current_positions_from_observation: bool = True

    pre_fields: ClassVar[tuple[str, ...]] = ("qpos",)
    numpy_math: ClassVar[bool] = True
    # root coordinates dropped from the observation when excluding current positions
    skipped_positions: ClassVar[int] = 1
    velocity_clip: ClassVar[float | None] = None

    def _skip(self) -> int:
        return self.skipped_positions if self.exclude_current_positions_from_observation else 0

    def observation_dim(self, model) -> int:  # noqa: ANN001
        return model.nq + model.nv - self._skip()

    def observation(self, view: PhysicsView) -> torch.Tensor:
        return positions_velocities(view, self._skip(), self.velocity_clip)


def mass_center(xipos: Any, body_mass: Any) -> Any:
    """Mass-weighted mean of body inertial-frame positions ``[B, 3]`` (Gymnasium's
    ``mass_center``: ``sum(mass * xipos) / sum(mass)`` over all bodies); ``body_mass`` in
    ``xipos``'s library and device."""
    return (body_mass[None, :, None] * xipos).sum(1) / body_mass.sum()


def build_task(task_id: str, kwargs: dict) -> MujocoTask:
    """Build the registered task definition of ``task_id`` (kept for existing callers; the
    one loader is :func:`rlwb.tasks.build_task`)."""
    from rlwb import tasks

    return tasks.build_task(task_id, kwargs)


def load_model(task_id: str, task: MujocoTask) -> Any:
    """The ``mujoco.MjModel`` of a built task definition (``task.load_model``), with
    ``task.setup`` called: the common first step of every MuJoCo backend."""
    from rlwb.envs.mujoco.log import quiet_known_warnings
    from rlwb.errors import ConfigError

    try:
        path = task.model_path()  # (dm_control's import here installs its warning handler)
    except FileNotFoundError as exc:
        raise ConfigError(f"bad xml_file for task {task_id!r}: {exc}") from exc
    quiet_known_warnings()
    model = task.load_model(path)
    task.setup(model)
    return model


def load_task_model(task_id: str, kwargs: dict) -> tuple[MujocoTask, Any]:
    """Build the task definition and its ``mujoco.MjModel`` (kept for existing callers)."""
    task = build_task(task_id, kwargs)
    return task, load_model(task_id, task)


def planar_motion_info(xy: Any, xy_velocity: Any) -> dict[str, Any]:
    """The position/velocity info keys Gymnasium's planar-moving tasks (Ant, Humanoid,
    Swimmer) report."""
    return {
        "x_position": xy[:, 0],
        "y_position": xy[:, 1],
        "distance_from_origin": ops(xy).norm(xy, 1),
        "x_velocity": xy_velocity[:, 0],
        "y_velocity": xy_velocity[:, 1],
    }
