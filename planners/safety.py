"""The CLF/CBF minimal-intervention safety filter, and a wrapper any planner or policy sits behind.

The filter solves, for each member whose proposed action ``u0`` violates a condition::

    min_u,delta,s  |u - u0|^2 + clf_weight delta^2 + slack_weight sum(s)
    s.t.           a_k . u + s_k >= b_k        (CBF, one row per obstacle; s_k >= 0)
                   c . u <= e + delta          (relaxed CLF; delta >= 0)
                   low <= u <= high

with a real QP solver (``qpsolvers``; Clarabel by default, OSQP works too). Each CBF row is
scaled to a unit normal first (same half-space; its slack is then the action's distance from
it, in m/s^2), which keeps the problem well conditioned (unscaled rows of norms 1 to 7 with
offsets of -340 to 1 stalled Clarabel at its iteration limit). The CBF slack has an L1
(linear) penalty, which is *exact*: a unit row's multiplier is at most twice the distance
the action moves, far below ``slack_weight``, so the solution is the hard-constrained one
whenever that is feasible, and the filter still returns an action (the least violating one)
when it is not (counted as ``infeasible``). Members whose ``u0`` already satisfies every row
(within ``tol``) get ``u0`` back unchanged, bit for bit, and never reach the solver. All
violating members are solved as one block-diagonal QP in a single solver call (no
per-member Python loop); the solver runs on the CPU (the one numpy round trip of the filter).

Safety comes first: the CLF's quadratic penalty can outbid the CBF's exact one at large
relaxations (a CLF weight of 1000 with rate 2 let the drone into a pillar), so a member left
with CBF violation is solved again without its CLF row; only what remains counts as
``infeasible``. The filter never raises on a solver failure. If the solver fails on the
joint problem, each member is solved alone; a member whose problem still fails (or has
non-finite rows) gets :func:`least_violating`'s action, found without a solver, and is
counted as a ``fallback``.

The filter knows no system: the caller builds the rows (:class:`Constraints`) from its own
state, e.g. the quadrotor's obstacle CBFs and tracking CLF in
``rlwb.agents.safe_cem_mpc.constraints``. :class:`SafetyFilterConfig` also carries the gains
such rows use (a relative-degree-2 CBF's class-K gains, margin and tightening confidence; a
sliding-surface CLF's gain and decay rate), so one config sets up rows and filter together.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from rlwb.errors import ConfigError


@dataclass
class SafetyFilterConfig:
    """Gains of the CLF/CBF rows and the filter's solver settings (module docstring)."""

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
    clf_weight: float = 10.0
    """Penalty on the (squared) CLF relaxation; 0 turns the CLF off. Measured (4 seeded
    episodes x 160 steps, GP-CEM + filter): on the figure-eight 10 tracks as well as no CLF
    (RMSE 0.0202 m both) and 1000 a little better (0.0187); on the pillar course 1000 costs
    tracking (0.179 against 0.147 m without CLF) where 10 costs 4% (0.153)."""
    clf_yields: bool = True
    """Drop the CLF row for a member whose proposed action breaks a CBF row: near an
    obstacle the filter then only makes the action safe (see the module docstring)."""
    slack_weight: float = 1e4
    """L1 penalty on CBF violation (exact penalty: hard constraints whenever feasible)."""
    solver: str = "clarabel"
    """qpsolvers backend: clarabel, osqp, ..."""
    tol: float = 1e-6
    """An action satisfying every row within this tolerance passes unchanged."""
    infeasible_tol: float = 1e-4
    """CBF violation (m/s^2, distance from the safe set) above which the filtered action of a
    member counts as infeasible: no action in the box satisfies every CBF row."""

    def __post_init__(self) -> None:
        for name in ("cbf_alpha1", "cbf_alpha2", "slack_weight"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SafetyFilterConfig.{name} must be > 0")
        for name in (
            "margin",
            "confidence",
            "clf_lambda",
            "clf_rate",
            "clf_weight",
            "tol",
            "infeasible_tol",
        ):
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
    intervened: torch.Tensor  # [B] bool: the filter changed the action
    cbf_slack: torch.Tensor  # [B] violation of the (normalised) CBF rows left at the action
    infeasible: torch.Tensor  # [B] bool: no action in the box satisfies every CBF row
    fallback: torch.Tensor  # [B] bool: the solver failed; the action is the least violating


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


def _map(rows: Constraints, fn: Callable[[torch.Tensor], torch.Tensor]) -> Constraints:
    return Constraints(*(None if r is None else fn(r) for r in rows))


def normalised(rows: Constraints) -> Constraints:
    """The same CBF half-spaces with unit normals (``|a_k| = 1``, so a row's violation is the
    action's distance from it in m/s^2); a zero row stays as it is."""
    norm = rows.cbf_a.norm(dim=-1).clamp_min(1e-12)
    return rows._replace(cbf_a=rows.cbf_a / norm[..., None], cbf_b=rows.cbf_b / norm)


def cbf_violation(u: torch.Tensor, rows: Constraints) -> torch.Tensor:
    """``[B]`` total violation ``sum_k max(0, b_k - a_k . u)`` of the CBF rows."""
    return (rows.cbf_b - (rows.cbf_a @ u[..., None])[..., 0]).clamp_min(0).sum(-1)


def least_violating(
    u0: torch.Tensor, rows: Constraints, low: torch.Tensor, high: torch.Tensor, sweeps: int = 50
) -> torch.Tensor:
    """The last-resort action, without a solver: of three candidates in the box, the one with
    the least total CBF violation (ties: the first). Candidates: ``u0`` clipped to the box;
    ``sweeps`` rounds of cyclic projections onto each violated half-space and the box
    (alternating projections, which reach a point of the intersection when there is one);
    the box corner that maximises the summed margins ``sum_k a_k . u``."""
    low, high = low.to(u0), high.to(u0)
    clip = lambda u: torch.minimum(torch.maximum(u, low), high)  # noqa: E731
    rows = normalised(_map(rows, lambda r: r.to(u0)))
    start = clip(u0)
    u = start
    for _ in range(sweeps):
        for k in range(rows.cbf_a.shape[1]):
            a, b = rows.cbf_a[:, k], rows.cbf_b[:, k]
            short = (b - (a * u).sum(-1)).clamp_min(0)
            u = clip(u + short[:, None] * a)
    corner = torch.where(rows.cbf_a.sum(1) >= 0, high, low)
    candidates = torch.stack([start, u, corner], 1)  # [B, 3, A]
    violation = torch.stack([cbf_violation(c, rows) for c in candidates.unbind(1)], 1)
    best = violation.argmin(1)
    return candidates[torch.arange(u0.shape[0], device=u0.device), best]


class MinimalInterventionFilter:
    """``min |u - u0|^2`` subject to :class:`Constraints` and the action box, with the
    fallbacks of the module docstring; never raises on a solver failure."""

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
        if rows.clf_a is not None and self.config.clf_yields:
            unsafe = ((rows.cbf_a @ u0[..., None])[..., 0] < rows.cbf_b - self.config.tol).any(-1)
            rows = rows._replace(
                clf_a=torch.where(unsafe[:, None], 0.0, rows.clf_a),
                clf_b=torch.where(unsafe, 0.0, rows.clf_b),
            )
        bad = self.violations(u0, rows)
        zero = torch.zeros(u0.shape[0], dtype=u0.dtype, device=u0.device)
        if not bool(bad.any()):
            return FilterResult(u0, bad, zero, bad, bad)
        idx = bad.nonzero().squeeze(1)
        sub = normalised(_map(rows, lambda r: r[idx].to(torch.float64).cpu()))
        u0_sub = u0[idx].to(torch.float64).cpu()
        u, failed = self._solve_all(u0_sub, sub)
        slack = cbf_violation(u, sub)
        short = (slack > self.config.infeasible_tol).nonzero().squeeze(1)
        if sub.clf_a is not None and self.config.clf_weight > 0 and len(short):  # safety first
            safe_rows = Constraints(sub.cbf_a[short], sub.cbf_b[short])
            u[short], failed[short] = self._solve_all(u0_sub[short], safe_rows)
            slack = cbf_violation(u, sub)
        infeasible = slack > self.config.infeasible_tol
        put = lambda base, x: base.index_put((idx,), x.to(base.device, base.dtype))  # noqa: E731
        return FilterResult(
            put(u0, u),
            bad,
            put(zero, slack),
            put(torch.zeros_like(bad), infeasible),
            put(torch.zeros_like(bad), failed),
        )

    def _solve_all(self, u0: torch.Tensor, rows: Constraints) -> tuple[torch.Tensor, torch.Tensor]:
        """All M members as one block-diagonal QP; if the solver fails on it, each member
        alone; where that fails too, :func:`least_violating`. Returns ``u[M, A]`` and the
        ``[M]`` bool of members given the last resort."""
        u = self._solve(u0, rows)
        if u is not None:
            return u, torch.zeros(u0.shape[0], dtype=torch.bool)
        one = [self._solve(u0[i : i + 1], _map(rows, lambda r, i=i: r[i : i + 1]))
               for i in range(u0.shape[0])]  # fmt: skip
        failed = torch.tensor([x is None for x in one])
        last = least_violating(u0, rows, self.low, self.high)
        u = torch.cat([last[i : i + 1] if x is None else x for i, x in enumerate(one)])
        return u, failed

    def _solve(self, u0: torch.Tensor, rows: Constraints) -> torch.Tensor | None:
        """One block-diagonal QP over the M members in ``u0[M, A]`` (float64, CPU); None
        when the solver reports a failure or returns non-finite numbers."""
        qpsolvers, sp = _require_qpsolvers()
        cfg = self.config
        m, a = u0.shape
        k = rows.cbf_a.shape[1]
        clf = rows.clf_a is not None and cfg.clf_weight > 0
        nv = a + k + int(clf)  # per member: u, CBF slacks, CLF relaxation
        f64 = dict(dtype=torch.float64)
        # Per-member blocks, then one block-diagonal problem.
        p_diag = torch.cat([torch.full((a,), 2.0, **f64), torch.zeros(k, **f64)])
        q = torch.cat([-2 * u0, torch.full((m, k), cfg.slack_weight, **f64)], 1)
        g = torch.cat([-rows.cbf_a, -torch.eye(k, **f64).expand(m, k, k)], 2)  # -a u - s <= -b
        h = -rows.cbf_b
        if clf:
            p_diag = torch.cat([p_diag, torch.tensor([2.0 * cfg.clf_weight], **f64)])
            q = torch.cat([q, torch.zeros(m, 1, **f64)], 1)
            g = torch.cat([g, torch.zeros(m, k, 1, **f64)], 2)
            row = torch.cat([rows.clf_a, torch.zeros(m, k, **f64), -torch.ones(m, 1, **f64)], 1)
            g = torch.cat([g, row[:, None]], 1)
            h = torch.cat([h, rows.clf_b[:, None]], 1)
        inf = torch.full((m, nv - a), np.inf, **f64)
        lb = torch.cat([self.low.to(**f64).cpu().expand(m, a), torch.zeros(m, nv - a, **f64)], 1)
        ub = torch.cat([self.high.to(**f64).cpu().expand(m, a), inf], 1)
        if not (torch.isfinite(g).all() and torch.isfinite(h).all() and torch.isfinite(q).all()):
            return None
        with warnings.catch_warnings():  # a failure is handled (fallback), not a warning
            warnings.simplefilter("ignore")
            x = qpsolvers.solve_qp(
                sp.diags(p_diag.repeat(m).numpy()).tocsc(),
                q.reshape(-1).numpy(),
                sp.block_diag([gi.numpy() for gi in g], format="csc") if g.shape[1] else None,
                h.reshape(-1).numpy() if g.shape[1] else None,
                lb=lb.reshape(-1).numpy(),
                ub=ub.reshape(-1).numpy(),
                solver=cfg.solver,
            )
        if x is None or not np.isfinite(x).all():
            return None
        sol = torch.from_numpy(x).reshape(m, nv)
        return torch.minimum(torch.maximum(sol[:, :a], lb[:, :a]), ub[:, :a])


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
