"""Quadrotor position tracking under wind, batched in torch (``Quadrotor-*`` tasks).

Model: the translational dynamics of a quadrotor whose input is the mass-normalised thrust
vector, i.e. the outer loop of the usual cascaded controller. The attitude loop of a real
quadrotor runs ~10x faster than this 20 Hz loop and tracks the thrust direction, so the
outer loop sees (``e_z`` up, ``g = 9.81``)::

    p' = v,   v' = (u + g e_z) - g e_z + d(t, v) = u + d(t, v)

with ``u`` the thrust acceleration *offset from hover* (action, m/s^2) in the world frame:
``u_x, u_y`` in ``[-max_tilt_accel, max_tilt_accel]`` (a tilt limit) and ``u_z`` in
``[-g, g]`` (total thrust between 0 and 2 g), so the zero action hovers. ``d`` is the wind
disturbance of ``rlwb.envs.quadrotor.wind`` (linear drag on the relative air velocity).
Why not the full 12-state rigid body with body rates: the paper's learned part (and the
same group's ACC 2021 work) is the disturbance on the translational dynamics, and the
CBF/CLF filter is then a QP in ``u`` of relative degree 2; the attitude loop would only add
a fast inner loop the planner never sees. Mass 1 kg, drag 0.5 N s/m (0.5 1/s): a 3 m/s wind
pushes with 1.5 m/s^2, about a 9 degree tilt.

Integrator: semi-implicit Euler at ``dt = 0.05`` s (the wind is held over the step)::

    v' = v + (clip(u) + d(t, v)) dt,   p' = p + v' dt,   t' = t + dt

State ``[t, x, y, z, vx, vy, vz, wind_x, wind_y, wind_z, phases (3 K)]`` (mean wind and gust
phases, drawn at reset). Observation ``[x, y, z, vx, vy, vz, ref_x, ref_y, ref_z, ref_vx,
ref_vy, ref_vz, t]`` (13): the wind is not observed. Reward: minus the tracking cost
``|p - p_ref|^2 + vel_weight |v - v_ref|^2 + action_weight |u|^2``, minus
``collision_penalty`` while in collision. Info: ``tracking_error`` (m), ``min_obstacle_distance``
(clearance to the nearest obstacle, m), ``collision`` (0/1), and the true disturbance
acceleration ``disturbance_{x,y,z}``. Never terminates unless ``terminate_on_collision``.
Reset: position on the reference's start plus ``U(-init_noise, init_noise)`` per axis, the
reference's velocity; mean wind ``wind_speed`` along a heading ``U(wind_heading +-
wind_heading_spread)`` degrees in the horizontal plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rlwb.envs.classic.base import TorchTask
from rlwb.envs.quadrotor import obstacles as obs_lib
from rlwb.envs.quadrotor.references import KINDS, reference
from rlwb.envs.quadrotor.wind import gust_table, wind_velocity
from rlwb.errors import ConfigError

G = 9.81
OBS_NAMES = ("x", "y", "z", "vx", "vy", "vz", "ref_x", "ref_y", "ref_z",
             "ref_vx", "ref_vy", "ref_vz", "t")  # fmt: skip


@dataclass
class Quadrotor(TorchTask):
    """Quadrotor tracking under wind; see the module docstring for the model and numbers."""

    reference: str = "circle"
    radius: float = 1.5
    period: float = 8.0
    height: float = 1.0
    step_x: float = 1.0
    step_y: float = 1.0
    step_z: float = 0.5
    step_time: float = 1.0
    obstacles: str = "none"
    body_radius: float = 0.1
    mass: float = 1.0
    drag: float = 0.5
    max_tilt_accel: float = 6.0
    wind_speed: float = 3.0
    wind_heading: float = 0.0
    wind_heading_spread: float = 20.0
    gust_intensity: float = 1.0
    gust_components: int = 4
    gust_f_low: float = 0.05
    gust_f_high: float = 1.0
    gust_scale_length: float = 20.0
    init_noise: float = 0.1
    vel_weight: float = 0.1
    action_weight: float = 1e-3
    collision_penalty: float = 10.0
    terminate_on_collision: bool = False
    max_episode_steps: int = 200
    dt: float = 0.05

    obs_dim = len(OBS_NAMES)

    def __post_init__(self) -> None:
        if self.reference not in KINDS:
            raise ConfigError(
                f"reference must be one of {', '.join(KINDS)}, got {self.reference!r}"
            )
        for name in ("radius", "period", "mass", "dt", "max_tilt_accel"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"quadrotor {name} must be positive, got {getattr(self, name)!r}")
        for name in ("drag", "wind_speed", "gust_intensity", "body_radius", "init_noise"):
            if getattr(self, name) < 0:
                raise ConfigError(f"quadrotor {name} must be >= 0, got {getattr(self, name)!r}")
        if self.gust_components < 0 or not 0 < self.gust_f_low <= self.gust_f_high:
            raise ConfigError("need gust_components >= 0 and 0 < gust_f_low <= gust_f_high")
        self.obstacle_rows = obs_lib.parse_obstacles(self.obstacles)
        self.omega_list, self.amp_list = gust_table(
            self.gust_components, self.gust_f_low, self.gust_f_high, self.gust_intensity,
            self.gust_scale_length, max(self.wind_speed, 1.0),
        )  # fmt: skip
        k = len(self.omega_list)
        phases = tuple(f"phase_{a}{i}" for a in "xyz" for i in range(k))
        self.state_names = ("t", "x", "y", "z", "vx", "vy", "vz", "wind_x", "wind_y", "wind_z")
        self.state_names += phases
        self.action_low = (-self.max_tilt_accel, -self.max_tilt_accel, -G)
        self.action_high = (self.max_tilt_accel, self.max_tilt_accel, G)
        self.bind(torch.device("cpu"), torch.float32)

    def bind(self, device: torch.device, dtype: torch.dtype) -> None:
        super().bind(device, dtype)
        opts = dict(device=self.device, dtype=self.dtype)
        self.obstacle_tensor = torch.tensor(self.obstacle_rows, **opts).reshape(-1, 5)
        self.omegas = torch.tensor(self.omega_list, **opts)
        self.amps = torch.tensor(self.amp_list, **opts)
        self.center = torch.tensor([0.0, 0.0, self.height], **opts)
        self.step_vec = torch.tensor([self.step_x, self.step_y, self.step_z], **opts)
        self.low = torch.tensor(self.action_low, **opts)
        self.high = torch.tensor(self.action_high, **opts)

    # ---------------------------------------------------------------- pieces for models
    def reference_at(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reference ``(p, v, a)``, each ``[..., 3]``, at times ``t[...]``."""
        return reference(
            self.reference, t, self.center, self.radius, self.period, self.step_vec,
            self.step_time,
        )  # fmt: skip

    def clip_action(self, action: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(action, self.high), self.low)

    def disturbance(self, state: torch.Tensor) -> torch.Tensor:
        """``[B, 3]`` true wind acceleration at ``state``."""
        k = len(self.omega_list)
        phases = state[:, 10 : 10 + 3 * k].reshape(-1, 3, k)
        wind = wind_velocity(state[:, 0], state[:, 7:10], phases, self.omegas, self.amps)
        return self.drag / self.mass * (wind - state[:, 4:7])

    def tracking_cost(
        self, t: torch.Tensor, pos: torch.Tensor, vel: torch.Tensor, action: torch.Tensor
    ) -> torch.Tensor:
        """The task's tracking cost ``[...]`` (the reward without the collision penalty)."""
        p_ref, v_ref, _ = self.reference_at(t)
        return (
            (pos - p_ref).square().sum(-1)
            + self.vel_weight * (vel - v_ref).square().sum(-1)
            + self.action_weight * action.square().sum(-1)
        )

    # ---------------------------------------------------------------- task math
    def reset_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        t = torch.zeros(n, 1, device=self.device, dtype=self.dtype)
        p_ref, v_ref, _ = self.reference_at(t[:, 0])
        pos = p_ref + self.uniform(generator, n, -self.init_noise, self.init_noise, dim=3)
        spread = math.radians(self.wind_heading_spread)
        heading = math.radians(self.wind_heading) + self.uniform(generator, n, -spread, spread)
        mean = self.wind_speed * torch.cat([torch.cos(heading), torch.sin(heading), 0 * t], 1)
        k = 3 * len(self.omega_list)
        phases = self.uniform(generator, n, 0.0, 2 * math.pi, dim=k)
        return torch.cat([t, pos, v_ref, mean, phases], 1).T.contiguous().T

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        u = self.clip_action(action)
        vel = state[:, 4:7] + (u + self.disturbance(state)) * self.dt
        pos = state[:, 1:4] + vel * self.dt
        t = state[:, 0:1] + self.dt
        return torch.cat([t, pos, vel, state[:, 7:]], 1).T.contiguous().T

    def reward(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        u = self.clip_action(action)
        t, pos, vel = next_state[:, 0], next_state[:, 1:4], next_state[:, 4:7]
        cost = self.tracking_cost(t, pos, vel, u)
        p_ref, _, _ = self.reference_at(t)
        clearance = obs_lib.min_clearance(pos, self.obstacle_tensor, self.body_radius)
        collision = (clearance < 0).to(cost.dtype)
        dist = self.disturbance(state)
        info = {
            "tracking_error": torch.linalg.vector_norm(pos - p_ref, dim=-1),
            "min_obstacle_distance": clearance,
            "collision": collision,
            "disturbance_x": dist[:, 0],
            "disturbance_y": dist[:, 1],
            "disturbance_z": dist[:, 2],
        }
        return -cost - self.collision_penalty * collision, info

    def terminated(self, next_state: torch.Tensor) -> torch.Tensor:
        if not self.terminate_on_collision or self.obstacle_tensor.shape[0] == 0:
            return super().terminated(next_state)
        pos = next_state[:, 1:4]
        return obs_lib.min_clearance(pos, self.obstacle_tensor, self.body_radius) < 0

    def observation(self, state: torch.Tensor) -> torch.Tensor:
        p_ref, v_ref, _ = self.reference_at(state[:, 0])
        return torch.cat([state[:, 1:7], p_ref, v_ref, state[:, 0:1]], 1).contiguous()


def split_observation(obs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Named views of a quadrotor observation ``[..., 13]``."""
    return {"pos": obs[..., 0:3], "vel": obs[..., 3:6], "ref_pos": obs[..., 6:9],
            "ref_vel": obs[..., 9:12], "t": obs[..., 12]}  # fmt: skip
