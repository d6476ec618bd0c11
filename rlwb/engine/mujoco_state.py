"""The state layout of the MuJoCo backends (``mujoco`` and ``warp``), and states from outside.

One engine state row is MuJoCo's ``mj_getState`` with ``STATE_SPEC`` =
``mjSTATE_FULLPHYSICS | mjSTATE_WARMSTART | mjSTATE_CTRL | mjSTATE_USERDATA``, i.e.
``[time, qpos, qvel, act, (history), qacc_warmstart, ctrl, (userdata), (plugin)]`` in
MuJoCo's bit order, followed by the engine's elapsed-step counter. ``userdata`` is empty for
every Gymnasium model; tasks that keep per-episode state there (dm_control's targets) carry
it in the state. The warm start makes a clone continue bit-identically; the
last control makes a loaded member *observe* what its source observed (observations such
as Humanoid's ``qfrc_actuator`` depend on it). Both backends use this layout, so a state
taken on one loads on the other.

From outside: :func:`state_from_mujoco` reads a row from any ``MjModel``/``MjData`` (e.g.
``gymnasium.make(id).unwrapped.model/.data``), :func:`state_from_qpos_qvel` builds one from
positions and velocities, and ``set_state`` also accepts MuJoCo's own
``mj_getState(mjSTATE_FULLPHYSICS)`` rows (warm start and control zero, elapsed 0) and
the engine's layout without the control, as older checkpoints hold it
(:func:`convert_state`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import mujoco
import numpy as np
import torch

_S = mujoco.mjtState
STATE_SPEC = (
    int(_S.mjSTATE_FULLPHYSICS)
    | int(_S.mjSTATE_WARMSTART)
    | int(_S.mjSTATE_CTRL)
    | int(_S.mjSTATE_USERDATA)
)
FULLPHYSICS = int(_S.mjSTATE_FULLPHYSICS)


@contextlib.contextmanager
def actuation_disabled(opt: Any, disable: bool = True) -> Iterator[None]:
    """Within the block, ``opt.disableflags`` (an ``MjOption``, or MuJoCo Warp's model
    options: same bits) has actuation disabled when ``disable``: dm_control computes its
    reset observation so (``Physics.after_reset``), which acceleration-stage sensors show
    when actuator states start non-zero (dog)."""
    bit = int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
    before = int(opt.disableflags)
    if disable:
        opt.disableflags = before | bit
    try:
        yield
    finally:
        opt.disableflags = before


def _bits(spec: int) -> list[int]:
    return [1 << k for k in range(spec.bit_length()) if spec & (1 << k)]


def columns(model: mujoco.MjModel, spec: int = STATE_SPEC) -> dict[int, slice]:
    """Columns of each single-bit part of an ``mj_getState(spec)`` row."""
    out, start = {}, 0
    for bit in _bits(spec):
        size = mujoco.mj_stateSize(model, bit)
        out[bit] = slice(start, start + size)
        start += size
    return out


def part(model: mujoco.MjModel, name: str) -> slice:
    """Columns of ``qpos``, ``qvel``, ``ctrl``, ... in an engine state row."""
    return columns(model)[int(getattr(_S, f"mjSTATE_{name.upper()}"))]


def state_size(model: mujoco.MjModel) -> int:
    """Physics columns of an engine state row (without the elapsed counter)."""
    return mujoco.mj_stateSize(model, STATE_SPEC)


def state_from_mujoco(model: mujoco.MjModel, data: mujoco.MjData, elapsed: int = 0) -> torch.Tensor:
    """The engine state row ``[S]`` (float64) of ``data``: load it with ``set_state`` to
    continue exactly where ``data`` is (e.g. a Gymnasium env's ``unwrapped.data``)."""
    row = np.empty(state_size(model) + 1)
    mujoco.mj_getState(model, data, row[:-1], STATE_SPEC)
    row[-1] = elapsed
    return torch.from_numpy(row)


def state_from_qpos_qvel(
    model: mujoco.MjModel,
    qpos: torch.Tensor | np.ndarray,
    qvel: torch.Tensor | np.ndarray,
    time: float = 0.0,
) -> torch.Tensor:
    """Engine state rows ``[B, S]`` (or ``[S]`` for 1-D input) with these positions and
    velocities, as after Gymnasium's ``reset`` (``mj_resetData`` then qpos/qvel set:
    activations, warm start and control zero, elapsed 0)."""
    qpos = torch.as_tensor(qpos, dtype=torch.float64).cpu()
    qvel = torch.as_tensor(qvel, dtype=torch.float64).cpu()
    single = qpos.ndim == 1
    qpos, qvel = qpos.reshape(-1, model.nq), qvel.reshape(-1, model.nv)
    if qpos.shape[0] != qvel.shape[0]:
        raise ValueError(f"qpos and qvel batch sizes differ: {qpos.shape[0]} vs {qvel.shape[0]}")
    cols = columns(model)
    out = torch.zeros(qpos.shape[0], state_size(model) + 1, dtype=torch.float64)
    out[:, cols[int(_S.mjSTATE_TIME)]] = time
    out[:, cols[int(_S.mjSTATE_QPOS)]] = qpos
    out[:, cols[int(_S.mjSTATE_QVEL)]] = qvel
    return out[0] if single else out


def convert_state(model: mujoco.MjModel, state: torch.Tensor) -> torch.Tensor | None:
    """Rows in another known layout as engine rows (missing parts zero), or None:
    ``mj_getState(mjSTATE_FULLPHYSICS)`` rows (elapsed 0), and
    ``[FULLPHYSICS | WARMSTART, elapsed]`` rows (the layout without the control that older
    checkpoints hold; control 0)."""
    earlier = FULLPHYSICS | int(_S.mjSTATE_WARMSTART)
    for spec, elapsed in ((FULLPHYSICS, False), (earlier, True)):
        if state.shape[1] == mujoco.mj_stateSize(model, spec) + int(elapsed):
            break
    else:
        return None
    full, source = columns(model), columns(model, spec)
    out = torch.zeros(state.shape[0], state_size(model) + 1, dtype=state.dtype,
                      device=state.device)  # fmt: skip
    for bit, cols in source.items():
        out[:, full[bit]] = state[:, cols]
    if elapsed:
        out[:, -1] = state[:, -1]
    return out
