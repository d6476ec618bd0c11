"""Deterministic evaluation of an agent, live (during training) or from a checkpoint.

An evaluation is one closed-loop ``engine.rollout`` of ``episodes`` members, each one
episode long, with ``agent.act(obs, explore=False)``, after ``engine.reset(seed)``. The
run's evaluations all use the same seed (``TrainConfig.eval_seed``), so they are comparable
over training, and :func:`evaluate` on the run's final checkpoint reproduces the run's final
evaluation exactly (same backend and machine): it restores the agent and the global random
states saved with the checkpoint, which is when the runner evaluated.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import torch

from rlwb import checkpoint as ckpt
from rlwb.agent import Agent
from rlwb.config import from_dict, import_object
from rlwb.engine import Engine, EngineSpec, make_engine
from rlwb.errors import CheckpointError, ConfigError
from rlwb.policies import policy_of  # defined there since the Deep GA; still importable here

DEFAULT_HORIZON = 1000  # for tasks without a time limit


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None: CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"bad device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available here")
    return dev


def run_evaluation(
    agent: Agent, engine: Engine, seed: int, horizon: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One episode per engine member from ``reset(seed)``: (returns[N] f64, lengths[N])."""
    engine.reset(seed=seed)
    if horizon is None and engine.max_episode_steps is None:
        horizon = DEFAULT_HORIZON
    with torch.no_grad():
        result = engine.rollout(policy_of(agent, engine), horizon=horizon)
    return result.returns.to(torch.float64).cpu(), result.lengths.cpu()


def mean_std(returns: torch.Tensor) -> tuple[float, float]:
    """Mean and population standard deviation (as SB3's ``evaluate_policy``)."""
    values = returns.to(torch.float64)
    mean = float(values.mean())
    std = float(values.std(unbiased=False)) if len(values) > 1 else 0.0
    return mean, std


def spec_from_dict(data: dict[str, Any], device: torch.device) -> EngineSpec:
    fields = {f.name for f in dataclasses.fields(EngineSpec)}
    values = {k: v for k, v in data.items() if k in fields}
    values["observation_shape"] = tuple(values["observation_shape"])
    values["action_low"] = torch.as_tensor(values["action_low"]).to(device)
    values["action_high"] = torch.as_tensor(values["action_high"]).to(device)
    values["device"] = device
    return EngineSpec(**values)


def spec_to_dict(spec: EngineSpec) -> dict[str, Any]:
    data = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    data["action_low"] = spec.action_low.cpu()
    data["action_high"] = spec.action_high.cpu()
    data["device"] = str(spec.device)
    return data


def agent_from_checkpoint(payload: dict[str, Any], device: torch.device) -> Agent:
    """Rebuild the checkpoint's agent (class path + config + spec) and load its state."""
    try:
        agent_cls = import_object(payload["agent_class"])
        config_cls = import_object(payload["agent_config_class"])
        config = from_dict(config_cls, payload["agent_config"])
        spec = spec_from_dict(payload["spec"], device)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint lacks the field {exc.args[0]!r}") from None
    except ConfigError as exc:
        raise CheckpointError(f"cannot rebuild the checkpoint's agent: {exc}") from None
    agent = agent_cls(config, spec, device)
    agent.load_state_dict(payload["agent"])
    return agent


def evaluate(
    checkpoint_path: str | os.PathLike[str],
    episodes: int | None = 10,
    video: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    device: str | None = None,
    seed: int | None = None,
) -> tuple[float, float, list[float]]:
    """Mean and std of the return of a saved policy over ``episodes`` episodes.

    ``seed`` defaults to the run's evaluation seed and ``backend`` to the run's backend, so
    with the run's ``eval_episodes`` (``episodes=None``) this reproduces the run's final
    evaluation. ``video`` writes one more episode (seed ``seed``) as an mp4.
    """
    payload = ckpt.load(checkpoint_path)
    train = payload.get("train_config") or {}
    if episodes is None:
        episodes = int(train.get("eval_episodes", 10))
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be an integer >= 1, got {episodes!r}")
    dev = resolve_device(device if device is not None else _saved_device(train))
    agent = agent_from_checkpoint(payload, dev)
    ckpt.set_rng_state(payload["rng"]["global"])
    task = train["task"]
    task_kwargs = dict(train.get("task_kwargs") or {})
    eval_seed = int(seed if seed is not None else train["eval_seed"])
    if video is not None:
        from rlwb.video import check_renderable

        if not str(video).lower().endswith((".mp4", ".gif")):
            raise ConfigError(f"video path must end in .mp4 or .gif, got {str(video)!r}")
        check_renderable(task, task_kwargs)  # fail before the evaluation, not after it
    engine = make_engine(
        task,
        episodes,
        backend=backend or payload["backend"],
        device=dev,
        seed=eval_seed,
        **task_kwargs,
    )
    try:
        returns, _ = run_evaluation(agent, engine, eval_seed, train.get("eval_horizon"))
    finally:
        engine.close()
    if video is not None:
        from rlwb.video import record_video

        record_video(agent, task, video, seed=eval_seed, task_kwargs=task_kwargs)
    mean, std = mean_std(returns)
    return mean, std, [float(r) for r in returns]


def _saved_device(train: dict[str, Any]) -> str:
    saved = str(train.get("device", "auto"))
    return "auto" if saved.startswith("cuda") and not torch.cuda.is_available() else saved


def format_result(mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "nan"
    return f"{mean:.4f} ± {std:.4f} over {n} episode{'s' if n != 1 else ''}"
