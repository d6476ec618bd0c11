"""The CLF/CBF minimal-intervention safety filter, and a wrapper any planner or policy sits behind.

The filter solves, for each member whose proposed action ``u0`` violates a condition::

    min_u,delta,s  |u - u0|^2 + clf_weight delta^2 + slack_weight sum(s)
    s.t.           a_k . u + s_k >= b_k        (CBF, one row per obstacle; s_k >= 0)
                   c . u <= e + delta          (relaxed CLF; delta >= 0)
                   low <= u <= high

with a real QP solver (``qpsolvers``; Clarabel by default, OSQP works too). The CBF slack has
an L1 (linear) penalty, which is *exact*: for ``slack_weight`` above the constraint's
multiplier the solution is the hard-constrained one whenever that is feasible, and the
filter still returns an action (the least violating one) when it is not. Members whose
``u0`` already satisfies every row (within ``tol``) get ``u0`` back unchanged, bit for bit,
and never reach the solver. All violating members are solved as one block-diagonal QP in a
single solver call (no per-member Python loop); the solver runs on the CPU (the one numpy
round trip of the filter).

Conditions for the quadrotor (translational dynamics ``p'' = u + d``, ``d`` estimated as a
GP mean ``mu`` with per-axis standard deviation ``sigma``):

* CBF, per obstacle: ``h = |r|^2 - R^2`` with ``r`` the offset from the obstacle's axis
  (z dropped for cylinders) and ``R`` its radius plus the body radius plus ``margin``. ``h``
  has relative degree 2, so the exponential/high-order CBF condition is used:
  ``h'' + (a1 + a2) h' + a1 a2 h >= 0`` with ``h' = 2 r.v`` and ``h'' = 2 |P v|^2 + 2 r.(u + d)``.
  Tightening by the GP: the condition must hold for every ``d`` in the box
  ``mu +- confidence * sigma``, whose worst case subtracts ``2 confidence sum_i |r_i| sigma_i``.
* CLF, for tracking: the sliding variable ``s = (v - v_ref) + lam (p - p_ref)``,
  ``V = |s|^2 / 2``, ``V' = s.(u + mu - a_ref + lam (v - v_ref)) <= -rate V + delta``.
  Relaxed (``delta``), so safety always wins over tracking; ``clf_weight = 0`` drops it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from rlwb.envs.quadrotor.obstacles import SPHERE, offsets
from rlwb.errors import ConfigError


@dataclass
class SafetyFilterConfig:
    """Gains and solver of the CLF/CBF filter (see the module docstring)."""

    cbf_alpha1: float = 4.0
    """First class-K gain of the second-order CBF (1/s). Measured on Quadrotor-Obstacles-v0:
    (2, 4) intervened on 52% of steps and doubled the tracking error; (4, 8) 24%."""
    cbf_alpha2: float = 8.0
    """Second class-K gain (1/s); ``alpha2 * dt`` should stay well below 1 (sampled data)."""
    margin: float = 0.05
    """Extra clearance (m) the CBF keeps beyond the obstacle and body radii."""
    confidence: float = 2.0
    """The CBF holds for every disturbance within mean +- confidence * GP std."""
    clf_lambda: float = 2.0
    """Sliding-surface gain (1/s) of the tracking CLF."""
    clf_rate: float = 0.5
    """Required decay rate of the CLF (1/s)."""
    clf_weight: float = 0.0
    """Penalty on the CLF relaxation; 0 turns the CLF off (the default: the planner
    already tracks, and the filter then intervenes only for safety)."""
    slack_weight: float = 1e4
    """L1 penalty on CBF violation (exact penalty: hard constraints whenever feasible)."""
    solver: str = "clarabel"
    """qpsolvers backend: clarabel, osqp, ..."""
    tol: float = 1e-6
    """An action satisfying every row within this tolerance passes unchanged."""

    def __post_init__(self) -> None:
        for name in ("cbf_alpha1", "cbf_alpha2", "slack_weight"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SafetyFilterConfig.{name} must be > 0")
        for name in ("margin", "confidence", "clf_lambda", "clf_rate", "clf_weight", "tol"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SafetyFilterConfig.{name} must be >= 0")


class Constraints(NamedTuple):
    """Affine conditions on the action, per member: ``cbf_a[B, K, A] u >= cbf_b[B, K]``
    (hard) and ``clf_a[B, A] . u <= clf_b[B]`` (relaxed; None: no CLF)."""

    cbf_a: torch.Tensor
    cbf_b: torch.Tensor
    clf_a: torch.Tensor | None = None
    clf_b: torch.Tensor | None = None


class FilterResult(NamedTuple):
    action: torch.Tensor  # [B, A]
    intervened: torch.Tensor  # [B] bool: the QP changed the action
    cbf_slack: torch.Tensor  # [B] total CBF violation left (0 when feasible)


def _require_qpsolvers():
    try:
        import qpsolvers
        import scipy.sparse
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError(
            "the safety filter needs qpsolvers: pip install 'qpsolvers[clarabel]' "
            "(or pip install -e '.[safe]')"
        ) from None
    return qpsolvers, scipy.sparse


class MinimalInterventionFilter:
    """``min |u - u0|^2`` subject to :class:`Constraints` and the action box."""

    def __init__(
        self, config: SafetyFilterConfig, action_low: torch.Tensor, action_high: torch.Tensor
    ) -> None:
        self.config = config
        self.low, self.high = action_low, action_high
        qpsolvers, _ = _require_qpsolvers()
        if config.solver not in qpsolvers.available_solvers:
            raise ConfigError(
                f"QP solver {config.solver!r} is not installed; available: "
                f"{', '.join(qpsolvers.available_solvers) or 'none'}"
            )

    def violations(self, u: torch.Tensor, rows: Constraints) -> torch.Tensor:
        """``[B]`` bool: ``u`` breaks a CBF or CLF row, or the box (beyond ``tol``)."""
        tol = self.config.tol
        bad = ((rows.cbf_a @ u[..., None])[..., 0] < rows.cbf_b - tol).any(-1)
        if rows.clf_a is not None and self.config.clf_weight > 0:
            bad = bad | ((rows.clf_a * u).sum(-1) > rows.clf_b + tol)
        low, high = self.low.to(u), self.high.to(u)
        return bad | (u < low - tol).any(-1) | (u > high + tol).any(-1)

    def __call__(self, u0: torch.Tensor, rows: Constraints) -> FilterResult:
        bad = self.violations(u0, rows)
        zero = torch.zeros(u0.shape[0], dtype=u0.dtype, device=u0.device)
        if not bool(bad.any()):
            return FilterResult(u0, bad, zero)
        idx = bad.nonzero().squeeze(1)
        sub = Constraints(*(None if r is None else r[idx] for r in rows))
        u, slack = self._solve(u0[idx], sub)
        action = u0.index_put((idx,), u.to(u0))
        return FilterResult(action, bad, zero.index_put((idx,), slack.to(u0)))

    def _solve(self, u0: torch.Tensor, rows: Constraints) -> tuple[torch.Tensor, torch.Tensor]:
        """One block-diagonal QP over the M members in ``u0[M, A]``."""
        qpsolvers, sp = _require_qpsolvers()
        cfg = self.config
        m, a = u0.shape
        k = rows.cbf_a.shape[1]
        clf = rows.clf_a is not None and cfg.clf_weight > 0
        nv = a + k + int(clf)  # per member: u, CBF slacks, CLF relaxation
        f64 = dict(dtype=torch.float64)
        cbf_a, cbf_b = rows.cbf_a.to(**f64).cpu(), rows.cbf_b.to(**f64).cpu()
        # Per-member blocks, then one block-diagonal problem.
        p_diag = torch.cat([torch.full((a,), 2.0), torch.zeros(k)])
        q = torch.cat([-2 * u0.to(**f64).cpu(), torch.full((m, k), cfg.slack_weight)], 1)
        g = torch.cat([-cbf_a, -torch.eye(k, **f64).expand(m, k, k)], 2)  # -a u - s <= -b
        h = -cbf_b
        if clf:
            p_diag = torch.cat([p_diag, torch.tensor([2.0 * cfg.clf_weight])])
            q = torch.cat([q, torch.zeros(m, 1, **f64)], 1)
            g = torch.cat([g, torch.zeros(m, k, 1, **f64)], 2)
            row = torch.cat(
                [rows.clf_a.to(**f64).cpu(), torch.zeros(m, k, **f64), -torch.ones(m, 1, **f64)],
                1,
            )
            g = torch.cat([g, row[:, None]], 1)
            h = torch.cat([h, rows.clf_b.to(**f64).cpu()[:, None]], 1)
        inf = torch.full((m, nv - a), np.inf, **f64)
        lb = torch.cat([self.low.to(**f64).cpu().expand(m, a), torch.zeros(m, nv - a, **f64)], 1)
        ub = torch.cat([self.high.to(**f64).cpu().expand(m, a), inf], 1)
        x = qpsolvers.solve_qp(
            sp.diags(p_diag.repeat(m).numpy()).tocsc(),
            q.reshape(-1).numpy(),
            sp.block_diag([gi.numpy() for gi in g], format="csc") if g.shape[1] else None,
            h.reshape(-1).numpy() if g.shape[1] else None,
            lb=lb.reshape(-1).numpy(),
            ub=ub.reshape(-1).numpy(),
            solver=cfg.solver,
        )
        if x is None:  # the L1 slacks make the QP always feasible; this is a solver failure
            raise RuntimeError(f"QP solver {cfg.solver!r} failed on the safety filter's problem")
        sol = torch.from_numpy(x).reshape(m, nv)
        u = torch.minimum(torch.maximum(sol[:, :a], lb[:, :a]), ub[:, :a]).to(u0.device)
        return u, sol[:, a : a + k].sum(1).to(u0.device)


# ---------------------------------------------------------------------- quadrotor conditions
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


class SafeController:
    """Any controller ``act(obs) -> u[B, A]`` behind the filter: ``u = QP(act(obs),
    constraints(obs))``. ``constraints`` builds the rows from the observation (and whatever
    disturbance model the caller holds); the last :class:`FilterResult` is kept in ``last``.
    """

    def __init__(
        self,
        act: Callable[[torch.Tensor], torch.Tensor],
        constraints: Callable[[torch.Tensor], Constraints],
        qp: MinimalInterventionFilter,
    ) -> None:
        self.act, self.constraints, self.qp = act, constraints, qp
        self.last: FilterResult | None = None

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        self.last = self.qp(self.act(obs), self.constraints(obs))
        return self.last.action
