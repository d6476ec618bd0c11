"""What a planner plans with: a model that scores action sequences for B real members.

The whole protocol is one method::

    model.rollout(states[B, S], actions[B, N, H, A]) -> returns[B, N]

``states`` is the model's own state of each real member (engine state rows for
:class:`EngineModel`, observations for a learned ensemble, latents for TD-MPC's model);
``actions`` holds N candidate sequences of horizon H per member, in the task's action units.
The return is the sum of rewards over the horizon plus the model's terminal value, if it
has one. Every planner (the :class:`~rlwb.planners.base.Planner` protocol:
``planners.sampling``, ``planners.gradient``) takes any such model.

Implementations: :class:`EngineModel` here (the true simulator), the PETS ensemble
(``planners.ensemble``), the TD-MPC latent-model slot (``planners.latent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from rlwb.engine import Engine, EngineSpec, make_engine

ValueFn = Callable[[torch.Tensor], torch.Tensor]
RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""A task's known reward of a step given as observations, for models that predict
observations (PETS): ``(obs[M, O], action[M, A], next_obs[M, O]) -> (reward[M],
terminated[M] bool)``. Tasks offer one as ``reward_from_obs`` (``rlwb.tasks.reward_from_obs``
finds it)."""


@runtime_checkable
class Model(Protocol):
    """Scores N action sequences for each of B real members in one call."""

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``states[B, S]``, ``actions[B, N, H, A]`` -> ``returns[B, N]``."""
        ...


def check_plan_shapes(states: torch.Tensor, actions: torch.Tensor) -> tuple[int, int, int, int]:
    """``(B, N, H, A)`` of a model call, or a clear error."""
    if actions.ndim != 4:
        raise ValueError(f"actions must be [B, N, H, A], got shape {tuple(actions.shape)}")
    if states.ndim < 2 or states.shape[0] != actions.shape[0]:
        raise ValueError(
            f"states must be [B, ...] with B = {actions.shape[0]} (from actions), "
            f"got shape {tuple(states.shape)}"
        )
    return tuple(actions.shape)  # type: ignore[return-value]


class EngineModel:
    """The true dynamics: each real member's state is cloned into N members of a sibling
    engine (``set_state`` of ``states.repeat_interleave(N)``), which runs the N sequences
    open loop (``rollout(..., stop_on_truncation=False)``). No physics is re-implemented.

    ``states`` are rows of the real engine's ``get_state()`` (what ``rlwb.agent.act_on``
    hands a planning agent). A member that terminates inside the horizon collects no more
    reward. ``terminal_value(final_obs[B * N, ...]) -> [B * N]`` (optional) is added for
    members still alive at the end. ``differentiable=True`` (torch backend only) keeps the
    autograd graph from the actions to the returns, for ``planners.gradient``.

    Sibling engines are built lazily, one per batch size ``B * N``, from ``engine.spawn`` or
    from an :class:`EngineSpec` (``make_engine(spec.task_id, backend=spec.backend, ...)``),
    so an agent rebuilt from a checkpoint can plan without the training engine.
    """

    def __init__(
        self,
        source: Engine | EngineSpec,
        terminal_value: ValueFn | None = None,
        differentiable: bool = False,
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> None:
        self.source = source
        self.terminal_value = terminal_value
        self.differentiable = bool(differentiable)
        self.seed = int(seed)
        self.engine_kwargs = engine_kwargs
        self._engines: dict[int, Engine] = {}
        if self.differentiable and source.backend != "torch":
            raise ValueError(
                f"differentiable=True needs a torch-backend task, not {source.backend!r}"
            )

    def engine(self, num_envs: int) -> Engine:
        """The sibling engine of ``num_envs`` members (built on first use)."""
        if num_envs not in self._engines:
            if isinstance(self.source, Engine) and not self.engine_kwargs:
                eng = self.source.spawn(num_envs, seed=self.seed)
            else:
                spec = self.source if isinstance(self.source, EngineSpec) else self.source.spec
                eng = make_engine(
                    spec.task_id,
                    num_envs=num_envs,
                    backend=spec.backend or "auto",
                    device=spec.device,
                    seed=self.seed,
                    dtype=spec.action_low.dtype,
                    **{**spec.task_kwargs, **self.engine_kwargs},
                )
            self._engines[num_envs] = eng
        return self._engines[num_envs]

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        b, n, h, a = check_plan_shapes(states, actions)
        eng = self.engine(b * n)
        init = states.to(eng.device, torch.float64).repeat_interleave(n, 0)
        flat = actions.reshape(b * n, h, a)
        kwargs: dict[str, Any] = dict(init_state=init, stop_on_truncation=False)
        if self.differentiable:
            eng.detach_state()  # a previous graph must not leak into this one
            kwargs["differentiable"] = True
        else:
            flat = flat.detach()
        result = eng.rollout(flat, **kwargs)
        returns = result.returns
        if self.terminal_value is not None:
            alive = ~result.terminated.any(1)
            returns = returns + torch.where(alive, self.terminal_value(result.final_obs), 0.0)
        return returns.reshape(b, n)

    def close(self) -> None:
        for eng in self._engines.values():
            eng.close()
        self._engines.clear()
