"""What a planner is: the :class:`Planner` protocol, and :class:`PlannerBase`, its shared parts.

A planner chooses the next action of B real members by optimising action sequences on a
:class:`~rlwb.planners.models.Model` (``model.rollout(states[B, S], actions[B, N, H, A]) ->
returns[B, N]``). The protocol:

* ``plan(model, states[B, S], prior=None) -> actions[B, A]``: the first action of each
  member's best plan, in task units. ``states`` are whatever the model takes (engine state
  rows, observations, latents). ``prior`` (optional) adds candidate sequences: a tensor
  ``[B, P, H, A]`` in task units or a callable ``states -> [B, P, H, A]`` (TD-MPC's
  policy-prior trajectories). After a call, ``last_plan`` holds the executed sequences
  ``[B, H, A]`` (task units) and ``last_returns`` their model returns ``[B]``.
* Warm start: a planner keeps per-member state between calls, the plan shifted by one step
  (``PlannerBase.mean``, ``[B, H, A]`` in the normalised action space, plus any kept elites),
  so the next call starts from the rest of this one's plan. ``reset(mask)`` forgets it for
  the members in the bool mask ``[B]`` (new episodes; all when None), ``advance(steps)``
  shifts it further when a plan is executed for several steps. A call with a different B
  starts afresh.
* ``state_dict()`` / ``load_state_dict(state)``: the warm start and the random generator,
  so a planner restored from a checkpoint plans exactly as the saved one would have.

Planners are task-independent: they import the engine's protocols and torch, never an agent
or a task; whatever is task-specific (rewards, constraints) reaches them through the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from rlwb.errors import ConfigError
from rlwb.planners.models import Model

Prior = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
"""Policy-prior candidates: ``[B, P, H, A]`` in task units, or ``states -> [B, P, H, A]``."""


@runtime_checkable
class Planner(Protocol):
    """Optimises action sequences on a model for B members at once (module docstring)."""

    last_plan: torch.Tensor | None
    last_returns: torch.Tensor | None

    def plan(self, model: Model, states: torch.Tensor, prior: Prior | None = None) -> torch.Tensor:
        """``states[B, S]`` -> first actions ``[B, A]`` (task units) of the members' plans."""
        ...

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Forget the warm start of the members in ``mask`` (bool ``[B]``; all when None)."""
        ...

    def advance(self, steps: int) -> None:
        """Shift the warm start ``steps`` more steps (a plan executed for several steps)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Warm start and generator state."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...


def shift(x: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """Drop the first ``steps`` steps along dim -2, fill the end with the middle of the range."""
    steps = min(steps, x.shape[-2])
    return torch.cat([x[..., steps:, :], torch.zeros_like(x[..., :steps, :])], dim=-2)


class PlannerBase:
    """What every planner shares: action units, per-member warm starts, prior candidates,
    a seeded generator and checkpoints. ``config`` needs ``horizon`` and ``validate()``."""

    def __init__(
        self,
        config: Any,
        action_low: torch.Tensor,
        action_high: torch.Tensor,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.device = torch.device(device)
        self.low = torch.as_tensor(action_low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(action_high, dtype=torch.float32, device=self.device)
        if self.low.ndim != 1 or self.low.shape != self.high.shape:
            raise ConfigError("action_low and action_high must be 1-D tensors of equal length")
        if not bool(torch.isfinite(self.low).all() & torch.isfinite(self.high).all()):
            raise ConfigError("planners need finite action bounds")
        self.action_dim = int(self.low.shape[0])
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0 if seed is None else int(seed))
        self.mean: torch.Tensor | None = None  # [B, H, A], normalised
        self.kept: torch.Tensor | None = None  # [B, K, H, A], normalised (iCEM)
        self.last_returns: torch.Tensor | None = None  # [B] best return of the last plan
        self.last_plan: torch.Tensor | None = None  # [B, H, A] executed sequence, task units
        self.last_std: torch.Tensor | None = None  # [B, A] final std of step 0, normalised

    # ------------------------------------------------------------------ units
    def to_task(self, u: torch.Tensor) -> torch.Tensor:
        """Normalised [-1, 1] actions -> task units."""
        return self.low + (u + 1) * 0.5 * (self.high - self.low)

    def to_unit(self, a: torch.Tensor) -> torch.Tensor:
        return (2 * (a - self.low) / (self.high - self.low) - 1).clamp(-1, 1)

    # ------------------------------------------------------------------ warm start
    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Forget the warm start of members in ``mask`` (bool ``[B]``; all when None)."""
        mask = None if mask is None else torch.as_tensor(mask, dtype=torch.bool, device=self.device)
        if mask is None or self.mean is None or self.mean.shape[0] != mask.shape[0]:
            self.mean, self.kept = None, None
            return
        self.mean = self.mean.masked_fill(mask[:, None, None], 0.0)
        if self.kept is not None:  # kept elites of a fresh member restart at the middle
            self.kept = self.kept.masked_fill(mask[:, None, None, None], 0.0)

    def advance(self, steps: int) -> None:
        """Shift the warm start ``steps`` more steps (plans executed for several steps)."""
        if steps > 0 and self.mean is not None:
            self.mean = shift(self.mean, steps)
            self.kept = None if self.kept is None else shift(self.kept, steps)

    def _start(self, b: int) -> torch.Tensor:
        h, a = self.config.horizon, self.action_dim
        if self.mean is None or self.mean.shape[0] != b:
            self.mean = torch.zeros(b, h, a, device=self.device)
            self.kept = None
        return self.mean

    def _prior(self, states: torch.Tensor, prior: Prior | None, b: int) -> torch.Tensor | None:
        if prior is None:
            return None
        seqs = prior(states) if callable(prior) else prior
        expected = (b, self.config.horizon, self.action_dim)
        if seqs.ndim != 4 or (seqs.shape[0], *seqs.shape[2:]) != expected:
            raise ValueError(
                f"prior sequences must be [B={b}, P, H={expected[1]}, A={expected[2]}], "
                f"got {tuple(seqs.shape)}"
            )
        return self.to_unit(seqs.to(self.device, torch.float32))

    @staticmethod
    def _ranked(returns: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Model returns ``[B, N]`` for ranking (detached, float32); a NaN return (a diverged
        learned model) ranks last; all-NaN for a member is an error."""
        if returns.shape != u.shape[:2]:
            raise ValueError(
                f"model.rollout must return [B, N] = {tuple(u.shape[:2])}, "
                f"got {tuple(returns.shape)}"
            )
        returns = returns.detach().to(u.device, torch.float32)
        nan = torch.isnan(returns)
        if bool(nan.all(1).any()):
            raise ValueError("model.rollout returned NaN for every candidate of a member")
        return returns.masked_fill(nan, -math.inf)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "kept": self.kept, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = None if state["mean"] is None else state["mean"].to(self.device)
        self.kept = None if state["kept"] is None else state["kept"].to(self.device)
        self.generator.set_state(state["generator"].cpu())
