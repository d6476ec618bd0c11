"""The prelude every agent shares: its CPU thread count, its seeded generator, the map from
[-1, 1] to the task's action bounds, and the checks that make a checkpoint that does not
fit fail in one line. An agent imports it as ``from rlwb import agent_kit as kit``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from rlwb.engine.base import EngineSpec
from rlwb.errors import CheckpointError, ConfigError


def apply_torch_threads(threads: int, device: torch.device | str = "cpu") -> None:
    """``torch.set_num_threads(threads)`` for an agent on the CPU (0: leave torch's setting):
    agents run many small tensor ops, where extra threads cost more than they give."""
    if torch.device(device).type == "cpu" and threads > 0:
        torch.set_num_threads(threads)


def seeded_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """An agent's own random stream on ``device``, from ``seed`` (None: a seed drawn from
    torch's global generator, so a run seeded by the runner stays reproducible)."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator(device=device).manual_seed(int(seed))


def check_format(state: Any, newest: int, who: str, oldest: int = 1) -> int:
    """The ``format_version`` of a checkpoint ``state`` written by agent ``who``; a one-line
    :class:`~rlwb.errors.CheckpointError` unless it is an int in ``oldest..newest``."""
    version = state.get("format_version") if isinstance(state, dict) else None
    if not isinstance(version, int) or not oldest <= version <= newest:
        readable = newest if oldest == newest else f"{oldest}..{newest}"
        raise CheckpointError(
            f"{who} checkpoint format {version!r} is not supported (this rlwb reads {readable})"
        )
    return version


@contextmanager
def checkpoint_fits(who: str) -> Iterator[None]:
    """Turns the errors of loading saved tensors into a module or structure that differ
    (missing keys, other shapes, other types) into one line naming the agent ``who``."""
    try:
        yield
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{who} checkpoint does not fit this agent: {exc}") from exc


def unit_action_map(
    spec: EngineSpec, device: torch.device, who: str, images: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, bias)`` with ``action = u * scale + bias`` for ``u`` in [-1, 1]^A, for an
    agent ``who`` that takes flat observations (or also ``images`` ``(C, H, W)``) and needs
    finite action bounds; a :class:`~rlwb.errors.ConfigError` naming the task otherwise."""
    if spec.num_actions:
        raise ConfigError(
            f"{who} needs continuous actions; {spec.task_id} has {spec.num_actions} discrete "
            "ones (Atari games train with: rlwb train deep_ga_atari)"
        )
    if len(spec.observation_shape) != 1 and not (images and len(spec.observation_shape) == 3):
        raise ConfigError(
            f"{who} takes flat observations; {spec.task_id} has shape {spec.observation_shape}"
        )
    low = spec.action_low.to(device, torch.float32)
    high = spec.action_high.to(device, torch.float32)
    if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ConfigError(f"{who} needs finite action bounds; {spec.task_id} has {low}..{high}")
    return (high - low) / 2, (high + low) / 2


def to_unit(action: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """An environment action back in [-1, 1]^A (the inverse of :func:`unit_action_map`'s
    ``u * scale + bias``, clipped), as float32 on the device of ``scale``: how agents store
    the actions they learn from."""
    unit = (action.to(scale.device, torch.float32) - bias) / scale
    return unit.clamp_(-1.0, 1.0)


def states_of(owner: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{name: owner.<name>.state_dict()}``: the modules, optimizers, buffers ... of an
    agent under their attribute names, as its checkpoint stores them."""
    return {name: getattr(owner, name).state_dict() for name in names}


def load_states(owner: Any, state: dict[str, Any], names: Iterable[str]) -> None:
    """The inverse of :func:`states_of`: ``owner.<name>.load_state_dict(state[name])``
    for each name (inside :func:`checkpoint_fits`, a missing name or a misfit is one
    line)."""
    for name in names:
        getattr(owner, name).load_state_dict(state[name])
