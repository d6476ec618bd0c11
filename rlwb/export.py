"""Export a saved policy network to ONNX or TorchScript, checked against torch.

``rlwb export RUN -o policy.onnx`` (or ``-o policy.pt`` for TorchScript) rebuilds the run's
agent from its latest checkpoint or ``policy.pt`` (on the CPU), asks it for its policy as
one module (:meth:`rlwb.agent.Agent.policy_network`: observation in, action in the task's
bounds out, batch size free), writes that module and then runs the written file on the same
observations as the torch module: ONNX through ``onnxruntime``, TorchScript through
``torch.jit.load``. The largest absolute difference is printed, and above a tolerance the
export fails and leaves no file behind. Where the module is the agent's whole policy, it is
also checked against ``agent.act(obs, explore=False)``.

The check's observations are the checkpoint's last training observations when it has them
(real states of the task) and Gaussian ones of two scales, in batches of several sizes (the
batch dimension is dynamic in both formats).

Agents that choose every action by planning (CEM-MPC, PETS, safe CEM-MPC) have no network
to export: :class:`NotExportable`, one line saying why (exit code 2 on the command line).
"""

from __future__ import annotations

import copy
import io
import os
import pathlib
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlwb import checkpoint as ckpt
from rlwb.agent import Agent
from rlwb.errors import ConfigError, RlwbError

FORMATS = {".onnx": "ONNX", ".pt": "TorchScript"}
ONNX_OPSET = 17
#: Allowed ``max |exported - torch|`` per unit of action magnitude (float32 round-off of a
#: few hundred multiply-adds is ~1e-6; a wrong graph is off by far more).
TOLERANCE = 1e-4
CHECK_BATCHES = (1, 7, 64)


class NotExportable(RlwbError):
    """The agent has no policy network (it plans), or the export failed its check."""


@dataclass
class ExportResult:
    path: pathlib.Path
    format: str
    agent: str
    observation_shape: tuple[int, ...]
    action_dim: int
    max_abs_diff: float
    """Largest ``|exported - torch module|`` over the check's observations."""
    act_diff: float | None
    """Largest ``|torch module - agent.act|`` (None where the module is not the whole
    policy: see ``note``)."""
    tolerance: float
    observations: int
    note: str | None

    def lines(self) -> list[str]:
        obs = ", ".join(str(d) for d in self.observation_shape)
        out = [
            f"wrote {self.path} ({self.format}): {self.agent} policy, "
            f"obs[B, {obs}] float32 -> action[B, {self.action_dim}]",
            f"checked on {self.observations} observations: max |{self.format} - torch| = "
            f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e})",
        ]
        if self.act_diff is not None:
            out.append(
                f"torch module vs agent.act(explore=False): max |diff| = {self.act_diff:.2e}"
            )
        if self.note:
            out.append(f"note: {self.note}")
        return out


def planning_reason(agent: Agent) -> str:
    """Why an agent without a policy network cannot be exported, in one line."""
    name = type(agent).__name__
    where = (
        "in copies of the true simulator"
        if agent.needs_engine_state
        else "through its model of the dynamics"
    )
    return (
        f"{name} has no policy network to export: it chooses every action by planning "
        f"(optimising action sequences {where}) at each step, which no single network computes"
    )


def load_agent(path: str | os.PathLike[str]) -> tuple[Agent, dict[str, Any]]:
    """The saved agent on the CPU with its policy loaded, and the saved payload."""
    from rlwb.saved_run import SavedRun

    saved = SavedRun.load(path)
    return saved.policy_agent(saved.spec("cpu"), "cpu"), saved.payload


def export_policy(
    path_or_run: str | os.PathLike[str], out: str | os.PathLike[str], tolerance: float = TOLERANCE
) -> ExportResult:
    """Export the policy of a run folder, checkpoint or ``policy.pt`` to ``out`` (``.onnx``:
    ONNX, ``.pt``: TorchScript) and check the written file against torch."""
    out = _output_path(out)
    source = ckpt.resolve(path_or_run)
    if source.resolve() == out.resolve():
        raise ConfigError(f"output {out} is the saved policy itself; choose another name")
    from rlwb.saved_run import SavedRun

    saved = SavedRun.load(source)
    agent = saved.policy_agent(saved.spec("cpu"), "cpu")
    return export_agent(agent, out, tolerance, saved.observations)


def export_agent(
    agent: Agent,
    out: str | os.PathLike[str],
    tolerance: float = TOLERANCE,
    observations: torch.Tensor | None = None,
) -> ExportResult:
    """Export ``agent``'s policy network to ``out`` and check it (see the module docstring).
    ``observations``: real ones to include in the check (e.g. a checkpoint's)."""
    out = _output_path(out)
    net = agent.policy_network()
    if net is None:
        raise NotExportable(planning_reason(agent))
    module = _frozen_cpu_copy(net.module)
    obs = check_observations(agent.spec.observation_shape, observations)
    with torch.no_grad():
        expected = module(obs)
    act_diff = None
    if net.differs_from_act is None:
        act_diff = _max_diff(expected, agent.act(obs.to(agent.device), explore=False).cpu())
    fmt = FORMATS[out.suffix]
    data = _to_onnx(module, obs, agent) if fmt == "ONNX" else _to_torchscript(module, obs)
    run = _onnx_runner(data) if fmt == "ONNX" else _torchscript_runner(data)
    diff = max(_max_diff(expected[i], run(obs[i])) for i in _batches(len(obs)))
    allowed = tolerance * max(1.0, float(expected.abs().max()))
    if not diff <= allowed:  # also catches NaN
        raise NotExportable(
            f"{fmt} export of {type(agent).__name__} differs from torch by {diff:.3g} "
            f"(tolerance {allowed:.1g}); nothing written"
        )
    if act_diff is not None and not act_diff <= allowed:
        raise NotExportable(
            f"{type(agent).__name__}.policy_network() differs from agent.act by "
            f"{act_diff:.3g} (tolerance {allowed:.1g}); nothing written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write_bytes(out, lambda handle: handle.write(data))
    return ExportResult(
        path=out,
        format=fmt,
        agent=type(agent).__name__,
        observation_shape=tuple(agent.spec.observation_shape),
        action_dim=agent.spec.action_dim,
        max_abs_diff=diff,
        act_diff=act_diff,
        tolerance=allowed,
        observations=len(obs),
        note=net.differs_from_act,
    )


def check_observations(
    shape: tuple[int, ...], real: torch.Tensor | None = None, seed: int = 0
) -> torch.Tensor:
    """Observations for the check: ``real`` ones (if given) first, then Gaussian ones of
    scales 1 and 5 (images ``(C, H, W)``: uniform pixel values 0..255, the float32 of a
    uint8 frame), so that there are at least ``sum(CHECK_BATCHES)``."""
    gen = torch.Generator().manual_seed(seed)
    parts = []
    if real is not None and tuple(real.shape[1:]) == tuple(shape):
        parts.append(real.to(torch.float32).cpu())
    have = sum(len(p) for p in parts)
    need = max(sum(CHECK_BATCHES) - have, 2)
    if len(shape) == 3:
        parts.append(torch.randint(0, 256, (need, *shape), generator=gen).float())
        return torch.cat(parts)
    noise = torch.randn((need, *shape), generator=gen)
    noise[need // 2 :] *= 5.0
    parts.append(noise)
    return torch.cat(parts)


def _batches(n: int) -> list[slice]:
    """Consecutive slices of sizes 1, 7, 64, ... covering ``n`` rows (the export is traced
    at one batch size and must hold at the others)."""
    out, start, sizes = [], 0, list(CHECK_BATCHES)
    while start < n:
        size = sizes.pop(0) if sizes else n - start
        out.append(slice(start, min(start + size, n)))
        start += size
    return out


def _output_path(out: str | os.PathLike[str]) -> pathlib.Path:
    path = pathlib.Path(out)
    if path.suffix not in FORMATS:
        raise ConfigError(f"output {str(out)!r} must end in .onnx (ONNX) or .pt (TorchScript)")
    return path


def _frozen_cpu_copy(module: nn.Module) -> nn.Module:
    """A CPU float32 copy in eval mode without gradients (the agent's own is untouched)."""
    module = copy.deepcopy(module).cpu().float().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"ONNX export needs onnx and onnxruntime ({exc.name} is missing): "
            "pip install 'rlwb[export]', or write TorchScript with -o policy.pt"
        ) from None


def _to_onnx(module: nn.Module, obs: torch.Tensor, agent: Agent) -> bytes:
    _need_onnx()
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter chatter about python ints
        torch.onnx.export(
            module,
            (obs[:2],),
            buffer,
            input_names=["obs"],
            output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    spec = agent.spec
    meta = {
        "rlwb.agent": type(agent).__name__,
        "rlwb.task": spec.task_id,
        "rlwb.action_low": str(spec.action_low.tolist()),
        "rlwb.action_high": str(spec.action_high.tolist()),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def _to_torchscript(module: nn.Module, obs: torch.Tensor) -> bytes:
    """Traced TorchScript. Recent torch marks TorchScript deprecated in favour of
    ``torch.export``; it is still what C++ libtorch loads, so the warning is silenced."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, (obs[:2],), check_trace=False)
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _onnx_runner(data: bytes):
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])

    def run(obs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"obs": obs.numpy()})[0])

    return run


def _torchscript_runner(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")

    def run(obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded(obs)

    return run
