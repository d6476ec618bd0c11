"""The quadrotor's CBF and CLF rows for the minimal-intervention filter (``rlwb.planners.safety``).

Conditions on the quadrotor's action (translational dynamics ``p'' = u + d``, ``d`` estimated as a
GP mean ``mu`` with per-axis standard deviation ``sigma``):

* CBF, per obstacle: ``h = |r|^2 - R^2`` with ``r`` the offset from the obstacle's axis
  (z dropped for cylinders) and ``R`` its radius plus the body radius plus ``margin``. ``h``
  has relative degree 2, so the exponential/high-order CBF condition is used:
  ``h'' + (a1 + a2) h' + a1 a2 h >= 0`` with ``h' = 2 r.v`` and ``h'' = 2 |P v|^2 + 2 r.(u + d)``.
  Tightening by the GP: the condition must hold for every ``d`` in the box
  ``mu +- confidence * sigma``, whose worst case subtracts ``2 confidence sum_i |r_i| sigma_i``.
* CLF, for tracking: the sliding variable ``s = (v - v_ref) + lam (p - p_ref)``,
  ``V = |s|^2 / 2``, ``V' = s.(u + mu - a_ref + lam (v - v_ref)) <= -rate V + delta``.
  Relaxed (``delta``, penalty ``clf_weight delta^2``), and dropped for a member whose
  proposed action breaks a CBF row (``clf_yields``), so safety wins over tracking;
  ``clf_weight = 0`` turns it off.

Gains come from :class:`~rlwb.planners.safety.SafetyFilterConfig`; ``clf_weight`` and
``clf_yields`` act in the filter.
"""

from __future__ import annotations

import torch

from rlwb.envs.quadrotor.obstacles import SPHERE, offsets
from rlwb.envs.quadrotor.task import Quadrotor
from rlwb.planners.safety import Constraints, SafetyFilterConfig


def obstacle_cbf_rows(
    pos: torch.Tensor,
    vel: torch.Tensor,
    d_mean: torch.Tensor,
    d_std: torch.Tensor,
    obstacles: torch.Tensor,
    body_radius: float,
    config: SafetyFilterConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order CBF rows ``a[B, K, 3] u >= b[B, K]`` per obstacle, tightened by the
    disturbance's uncertainty ``d_std[B, 3]`` (module docstring)."""
    r = offsets(pos, obstacles)  # [B, K, 3]
    radius = obstacles[:, 4] + body_radius + config.margin
    h = r.square().sum(-1) - radius.square()
    keep = torch.ones_like(obstacles[:, 1:4])
    keep[:, 2] = (obstacles[:, 0] == SPHERE).to(keep.dtype)  # P: cylinders ignore z
    v_proj = vel[:, None, :] * keep  # [B, K, 3]
    h_dot = 2 * (r * vel[:, None]).sum(-1)
    a1, a2 = config.cbf_alpha1, config.cbf_alpha2
    worst = 2 * config.confidence * (r.abs() * d_std[:, None]).sum(-1)
    b = (
        -2 * v_proj.square().sum(-1)
        - 2 * (r * d_mean[:, None]).sum(-1)
        + worst
        - (a1 + a2) * h_dot
        - a1 * a2 * h
    )
    return 2 * r, b


def tracking_clf_row(
    pos: torch.Tensor,
    vel: torch.Tensor,
    ref_pos: torch.Tensor,
    ref_vel: torch.Tensor,
    ref_acc: torch.Tensor,
    d_mean: torch.Tensor,
    config: SafetyFilterConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Relaxed CLF row ``c[B, 3] . u <= e[B]`` for the sliding-surface Lyapunov function."""
    ev = vel - ref_vel
    s = ev + config.clf_lambda * (pos - ref_pos)
    value = 0.5 * s.square().sum(-1)
    rest = (s * (d_mean - ref_acc + config.clf_lambda * ev)).sum(-1)
    return s, -config.clf_rate * value - rest


def quadrotor_constraints(
    task: Quadrotor,
    obs: torch.Tensor,
    d_mean: torch.Tensor,
    d_std: torch.Tensor,
    config: SafetyFilterConfig,
) -> Constraints:
    """CBF rows for every obstacle of ``task`` and the tracking CLF row at observation
    ``obs[B, 13]``, given the disturbance estimate ``d_mean[B, 3]`` +- ``d_std[B, 3]``."""
    pos, vel, t = obs[:, 0:3], obs[:, 3:6], obs[:, 12]
    cbf_a, cbf_b = obstacle_cbf_rows(
        pos, vel, d_mean, d_std, task.obstacle_tensor, task.body_radius, config
    )
    p_ref, v_ref, a_ref = task.reference_at(t)
    clf_a, clf_b = tracking_clf_row(pos, vel, p_ref, v_ref, a_ref, d_mean, config)
    return Constraints(cbf_a, cbf_b, clf_a, clf_b)
