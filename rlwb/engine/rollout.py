"""The one place that owns rollout semantics, shared by every backend.

A backend produces *raw* per-step outputs, either stepping (the reference loop in
:meth:`rlwb.engine.base.Engine._rollout_steps`) or with a fast path that simulates the
whole horizon at once (mujoco threads, warp graphs). :func:`assemble` turns them into a
:class:`RolloutResult` with the rules:

* a member is *alive* at step t if it has not ended before t; it ends at termination, and
  at the time limit when ``stop_on_truncation`` (``elapsed0 + t + 1 >= limit``, counted
  in engine steps from the member's elapsed steps when the rollout started);
* rewards and info values are zero where not alive, ``terminated``/``truncated`` are True
  only at the step where it happened (``truncated`` never on a terminating step);
* observations are frozen after a member's last alive step, ``final_obs`` is that last
  observation and ``observations[:, 0]`` the start;
* recorded actions are those passed in up to the last step any member was alive, zero
  after (the reference loop stops there);
* a stepping loop may stop simulating members that have ended (``Engine._step_some``):
  their raw rows after the end are placeholders the rules above never read, and a
  closed-loop policy sees their final observation from then on (one with ``act_some``,
  a population of networks, is asked only for the members still running: the ended
  members' actions are zero).

:func:`repeat_step` owns action repeat (``k`` task steps per engine step) the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

StepOut = tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


@dataclass
class RolloutResult:
    """A batch of N trajectories of horizon H, all tensors on the engine's device.

    ``rewards[n, t]`` is zero once member n has terminated (``alive[n, t]`` False).
    ``returns`` and ``lengths`` sum over alive steps. ``observations`` (if recorded) has
    H + 1 entries: the initial observation and one after each step (frozen after the end).
    """

    rewards: torch.Tensor  # [N, H]
    terminated: torch.Tensor  # [N, H] bool, True at the step the member terminated
    truncated: torch.Tensor  # [N, H] bool, True at the step the time limit hit
    alive: torch.Tensor  # [N, H] bool, the step was executed
    returns: torch.Tensor  # [N]
    lengths: torch.Tensor  # [N] int64
    final_obs: torch.Tensor  # [N, *obs_shape]
    observations: torch.Tensor | None = None  # [N, H + 1, *obs_shape]
    actions: torch.Tensor | None = None  # [N, H, A]
    infos: dict[str, torch.Tensor] | None = None  # per-step reward components [N, H]


def expand_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask [N, ...]`` with trailing singleton dims to broadcast against ``like``."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


def truncation(
    elapsed0: torch.Tensor, steps: int, limit: int | None, like: torch.Tensor
) -> torch.Tensor:
    """``[N, steps]`` bool: the time limit is reached at engine step t (from ``elapsed0``)."""
    if limit is None:
        return torch.zeros_like(like, dtype=torch.bool)
    t = torch.arange(1, steps + 1, device=elapsed0.device)
    return (elapsed0[:, None] + t[None, :]) >= limit


def still_alive(
    alive: torch.Tensor,
    term: torch.Tensor,
    elapsed_after: torch.Tensor,
    limit: int | None,
    stop_on_truncation: bool,
) -> torch.Tensor:
    """Members alive after a step (for a stepping loop's early exit)."""
    alive = alive & ~term
    if stop_on_truncation and limit is not None:
        alive = alive & (elapsed_after < limit)
    return alive


def _pad(x: torch.Tensor, length: int, repeat_last: bool) -> torch.Tensor:
    """``x [N, T, ...]`` padded along dim 1 to ``length`` (last entry or zeros)."""
    missing = length - x.shape[1]
    if missing <= 0:
        return x
    last = x[:, -1:]
    pad = last if repeat_last else torch.zeros_like(last)
    return torch.cat([x, pad.expand(-1, missing, *last.shape[2:])], dim=1)


def assemble(
    horizon: int,
    obs0: torch.Tensor,
    obs: torch.Tensor,
    reward: torch.Tensor,
    term: torch.Tensor,
    info: dict[str, torch.Tensor],
    actions: torch.Tensor,
    elapsed0: torch.Tensor,
    limit: int | None,
    stop_on_truncation: bool,
    record_obs: bool,
    record_actions: bool,
) -> RolloutResult:
    """The :class:`RolloutResult` of raw per-step outputs ``[N, T, ...]`` (``T <= horizon``
    steps simulated for every member regardless of alive; a stepping loop may stop once
    every member has ended, the rest is padded). Differentiable: only ``torch.where`` and
    gathers touch the values."""
    n, dtype, dev = obs0.shape[0], reward.dtype, obs0.device
    if obs.shape[1] == 0:  # nothing ran
        obs, reward = obs0[:, None], torch.zeros(n, 1, dtype=dtype, device=dev)
        term = torch.zeros(n, 1, dtype=torch.bool, device=dev)
        actions, info = actions[:, :0], {}
        ran = 0
    else:
        ran = obs.shape[1]
    reward = _pad(reward, horizon, False)  # obs stay [N, ran, ...]: padded only if recorded
    term = _pad(term, horizon, False)
    trunc_raw = truncation(elapsed0, horizon, limit, term)
    ended = term | trunc_raw if stop_on_truncation else term
    ended_i = ended.to(torch.int64)
    alive = (ended_i.cumsum(1) - ended_i) == 0
    if ran < horizon:
        alive[:, ran:] = False
    zero = torch.zeros((), dtype=dtype, device=dev)
    rewards = torch.where(alive, reward, zero)
    lengths = alive.sum(1)
    last = (lengths - 1).clamp(min=0)
    rows = torch.arange(n, device=dev)
    final_obs = torch.where(expand_mask(lengths > 0, obs0), obs[rows, last], obs0)
    observations = None
    if record_obs:
        obs = _pad(obs, horizon, True)
        frozen = torch.minimum(torch.arange(horizon, device=dev)[None, :], last[:, None])
        after = obs[rows[:, None], frozen]
        after = torch.where(expand_mask(lengths > 0, after), after, obs0[:, None])
        observations = torch.cat([obs0[:, None], after], dim=1)
    taken = None
    if record_actions:
        executed = int(lengths.max()) if n else 0
        taken = _pad(actions[:, :executed], horizon, False) if executed else None
        if taken is None:
            taken = torch.zeros(n, horizon, actions.shape[-1], dtype=actions.dtype, device=dev)
    infos = {}
    for key, value in info.items():
        value = _pad(value.to(dtype) if value.dtype.is_floating_point else value, horizon, False)
        infos[key] = torch.where(expand_mask(alive, value), value, torch.zeros_like(value))
    terminated = term & alive
    return RolloutResult(
        rewards=rewards,
        terminated=terminated,
        truncated=trunc_raw & alive & ~term,
        alive=alive,
        returns=rewards.sum(1),
        lengths=lengths,
        final_obs=final_obs,
        observations=observations,
        actions=taken,
        infos=infos,
    )


def repeat_step(step_once: Callable[[torch.Tensor], StepOut], action: torch.Tensor, k: int,
                early_exit: bool = True) -> StepOut:  # fmt: skip
    """One engine step of ``k`` task steps with the same action: rewards summed, stopping
    at termination (a member that terminates at sub-step j keeps sub-step j's observation,
    termination and info; later sub-steps are ignored for it). ``info`` holds the last
    counted sub-step's values (Gymnasium/DMC action-repeat wrappers return the last info)."""
    obs, reward, term, info = step_once(action)
    for _ in range(k - 1):
        alive = ~term
        if early_exit and not bool(alive.any()):
            break
        o, r, t, i = step_once(action)
        reward = reward + torch.where(alive, r, torch.zeros_like(r))
        obs = torch.where(expand_mask(alive, o), o, obs)
        info = {key: torch.where(expand_mask(alive, v), v, info[key]) for key, v in i.items()}
        term = term | (t & alive)
    return obs, reward, term, info


def collapse_repeats(
    obs: torch.Tensor,
    reward: torch.Tensor,
    term: torch.Tensor,
    info: dict[str, torch.Tensor],
    k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Raw task-step outputs ``[N, H * k, ...]`` of a fast path as engine steps
    ``[N, H, ...]`` with :func:`repeat_step`'s rule, vectorized over the horizon."""
    if k == 1:
        return obs, reward, term, info
    n, steps = reward.shape
    h = steps // k
    term_g = term.reshape(n, h, k)
    ended = term_g.to(torch.int64)
    counted = (ended.cumsum(2) - ended) == 0  # no termination earlier in the group
    reward_g = reward.reshape(n, h, k)
    reward_out = torch.where(counted, reward_g, torch.zeros_like(reward_g)).sum(2)
    last = counted.sum(2) - 1  # index of the last counted sub-step in each group
    base = torch.arange(h, device=reward.device)[None, :] * k + last
    rows = torch.arange(n, device=reward.device)[:, None]
    return (
        obs[rows, base],
        reward_out,
        term_g.any(2),
        {key: v[rows, base] for key, v in info.items()},
    )
