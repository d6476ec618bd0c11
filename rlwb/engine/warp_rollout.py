"""Open-loop rollouts on the ``warp`` backend: physics first, task math once.

``Engine._rollout_loop`` interleaves physics and the task's torch math step by step, which
costs a few dozen small kernel launches and a host sync per step. With the whole action
sequence known in advance, the warp backend instead

1. runs all H steps of physics, copying each step's action into ``d.ctrl`` and each step's
   task fields and state into record buffers (only Warp launches and device copies, so on
   the whole horizon is captured once as a graph and replayed for every later rollout of
   the same horizon);
2. evaluates the task once over the ``[H * B]`` batch of (pre, post) views and hands
   the raw per-step outputs to :func:`rlwb.engine.rollout.assemble`, which applies the
   same rules as to the stepping loop (``rollout`` restores the engine afterwards).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from rlwb.errors import ActionError

if TYPE_CHECKING:
    from rlwb.engine.warp_backend import WarpEngine


class RolloutBuffers:
    """Device buffers of one horizon: the control sequence and per-step records."""

    def __init__(self, engine: WarpEngine, horizon: int) -> None:
        wp, t = engine._wp, engine._t
        self.horizon = horizon
        self.names = list(engine.view)
        self.ctrl = torch.zeros(
            (horizon, *t["ctrl"].shape), dtype=t["ctrl"].dtype, device=engine.device
        )
        self.records = {
            n: torch.zeros((horizon, *t[n].shape), dtype=t[n].dtype, device=engine.device)
            for n in self.names
        }
        # Flat Warp aliases of the torch buffers and of the Data arrays, for wp.copy.
        self._flat_src = {n: wp.from_torch(t[n].reshape(-1)) for n in self.names}
        self._flat_rec = {n: wp.from_torch(r.reshape(-1)) for n, r in self.records.items()}
        self._flat_ctrl_dst = wp.from_torch(t["ctrl"].reshape(-1))
        self._flat_ctrl_seq = wp.from_torch(self.ctrl.reshape(-1))
        self.graph: Any = None
        self.calls = 0

    def run(self, engine: WarpEngine) -> None:
        """H steps of physics with recording (Warp work only: capturable)."""
        wp = engine._wp
        nctrl = engine._t["ctrl"].numel()
        for step in range(self.horizon):
            wp.copy(self._flat_ctrl_dst, self._flat_ctrl_seq, src_offset=step * nctrl, count=nctrl)
            engine._physics()
            for n in self.names:
                size = self._flat_src[n].size
                wp.copy(self._flat_rec[n], self._flat_src[n], dest_offset=step * size, count=size)


def _buffers(engine: WarpEngine, horizon: int) -> RolloutBuffers:
    """The buffers (and CUDA graph) of this horizon; only the latest horizon is kept."""
    cached = engine._rollout_graphs.get(horizon)
    if cached is None:
        cached = RolloutBuffers(engine, horizon)
        engine._rollout_graphs = {horizon: cached}
    return cached


def _check_actions(engine: WarpEngine, actions: torch.Tensor) -> torch.Tensor:
    if actions.dtype.is_complex or not actions.dtype.is_floating_point:
        raise ActionError(f"actions must be a floating-point tensor, got dtype {actions.dtype}")
    actions = actions.to(device=engine.device, dtype=engine.dtype)
    finite = torch.isfinite(actions).all(2)
    if not bool(finite.all()):
        bad = (~finite).any(1).nonzero().squeeze(1).tolist()
        raise ActionError(f"action contains NaN or inf for members {bad[:10]}")
    return actions


def batched_open_loop(engine: WarpEngine, actions: torch.Tensor) -> tuple[Any, ...]:
    """Raw per-step ``(obs, reward, term, info, actions)`` ``[B, H, ...]`` of the open-loop
    rollout of ``actions[B, H, A]`` (see the module docstring)."""
    actions = _check_actions(engine, actions)
    n, horizon, dim = actions.shape
    dtype = engine.dtype
    buffers = _buffers(engine, horizon)
    buffers.ctrl.copy_(actions.transpose(0, 1))
    engine._replay(buffers, lambda: buffers.run(engine))

    # Task math over [H * B]: post of step t is record t; pre is record t - 1 (or the view).
    rec = buffers.records
    post = {
        k: rec[k].reshape(horizon * n, *rec[k].shape[2:]).to(torch.float64) for k in engine.view
    }
    pre = {}
    for k in engine.task.pre_fields:
        before = torch.cat([engine.view[k][None], rec[k][:-1].to(torch.float64)], dim=0)
        pre[k] = before.reshape(horizon * n, *before.shape[2:])
    flat_actions = actions.transpose(0, 1).reshape(horizon * n, dim).to(torch.float64)
    step_obs, reward, term, info = engine.task.evaluate(pre, post, flat_actions, engine.task_dt)

    def per_member(x: torch.Tensor, cast: torch.dtype | None = dtype) -> torch.Tensor:
        x = x.reshape(horizon, n, *x.shape[1:]).transpose(0, 1)
        return x if cast is None else x.to(cast)

    infos = {k: per_member(v) for k, v in info.items()}
    return per_member(step_obs), per_member(reward), per_member(term, None), infos, actions
