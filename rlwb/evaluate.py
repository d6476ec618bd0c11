"""Deterministic evaluation of an agent, live (during training) or from a saved file.

An evaluation is one closed-loop ``engine.rollout`` of ``episodes`` members, each one
episode long, with ``act_on(agent, engine, obs, explore=False)``, after
``engine.reset(seed)`` and ``agent.episode_start`` for every member. It runs on its own
random numbers: the global generators and the agent's own ``torch.Generator`` attributes
are seeded with the evaluation seed for the evaluation and restored afterwards, so
evaluating never changes training (two runs that differ only in ``eval_every`` end
bit-identical) and every evaluation of the same policy gives the same returns.

The runner evaluates a separate agent built for the evaluation engine and loaded with the
training agent's ``policy_state_dict()``: exactly what ``policy.pt`` holds. So
:func:`evaluate` on ``policy.pt`` or on the final checkpoint reproduces the run's final
evaluation (same backend and machine), and per-episode agent state (OU noise, a planner's
warm start) never leaks between training and evaluation.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from rlwb import checkpoint as ckpt
from rlwb.agent import Agent
from rlwb.engine import Engine, make_engine
from rlwb.errors import ConfigError
from rlwb.logger import PhaseProgress
from rlwb.policies import policy_of  # re-exported for callers importing it from here
from rlwb.saved_run import (  # noqa: F401 - the saved-run format, re-exported from here
    SavedRun,
    agent_from_checkpoint,
    build_agent,
    load_policy,
    overrides_policy,
    policy_entry,
    spec_from_dict,
    spec_to_dict,
)

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


def _generators(agent: Agent) -> list[torch.Generator]:
    """The agent's ``torch.Generator`` attributes, also one object deep (a planner's)."""
    found: dict[int, torch.Generator] = {}
    for value in vars(agent).values():
        inner = vars(value).values() if hasattr(value, "__dict__") else ()
        for item in (value, *inner):
            if isinstance(item, torch.Generator):
                found[id(item)] = item
    return list(found.values())


@contextlib.contextmanager
def evaluation_rng(agent: Agent, seed: int) -> Iterator[None]:
    """Global and agent generators seeded with ``seed`` inside, restored on the way out."""
    saved_global = ckpt.rng_state()
    generators = _generators(agent)
    saved = [g.get_state() for g in generators]
    try:
        ckpt.seed_everything(seed)
        for g in generators:
            g.manual_seed(seed)
        yield
    finally:
        ckpt.set_rng_state(saved_global)
        for g, state in zip(generators, saved, strict=True):
            g.set_state(state)


def run_evaluation(
    agent: Agent, engine: Engine, seed: int, horizon: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One episode per engine member from ``reset(seed)``: (returns[N] f64, lengths[N]).

    ``agent`` should be built for ``engine`` (its ``spec.num_envs`` members). Every step
    is reported as the agent's phase ``"eval steps"`` (progress, and a stop request raises
    :class:`rlwb.agent.PhaseInterrupted` out of here)."""
    if horizon is None and engine.max_episode_steps is None:
        horizon = DEFAULT_HORIZON
    policy = policy_of(agent, engine)
    if agent.phase_reporter is not None:
        policy = _reporting(policy, agent, horizon or engine.max_episode_steps)
    with evaluation_rng(agent, seed), torch.no_grad():
        engine.reset(seed=seed)
        episode_start = getattr(agent, "episode_start", None)
        if episode_start is not None:
            episode_start(torch.ones(engine.num_envs, dtype=torch.bool, device=agent.device))
        result = engine.rollout(policy, horizon=horizon)
    return result.returns.to(torch.float64).cpu(), result.lengths.cpu()


def _reporting(policy: Callable[[torch.Tensor], torch.Tensor], agent: Agent, steps: int):  # noqa: ANN202
    """``policy`` that reports each step it is called for as the agent's phase."""
    done = itertools.count()

    def reporting_policy(obs: torch.Tensor) -> torch.Tensor:
        agent.phase("eval steps", next(done), steps)
        return policy(obs)

    return reporting_policy


def mean_std(returns: torch.Tensor) -> tuple[float, float]:
    """Mean and population standard deviation (as SB3's ``evaluate_policy``)."""
    values = returns.to(torch.float64)
    mean = float(values.mean())
    std = float(values.std(unbiased=False)) if len(values) > 1 else 0.0
    return mean, std


def evaluate(
    path: str | os.PathLike[str],
    episodes: int | None = 10,
    video: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    device: str | None = None,
    seed: int | None = None,
    progress_every: float | None = None,
    task_kwargs: Mapping[str, Any] | None = None,
) -> tuple[float, float, list[float]]:
    """Mean and std of the return of a saved policy over ``episodes`` episodes.

    ``path``: a run folder (its latest checkpoint, else its ``policy.pt``), a checkpoint or
    a ``policy.pt``; only the policy part is loaded into the agent. ``seed`` defaults to the
    run's evaluation seed and ``backend`` to the run's backend, so with the run's
    ``eval_episodes`` (``episodes=None``) this reproduces the run's evaluation at that step.
    ``video`` writes one more episode (seed ``seed``) as an mp4; if that fails, the
    :class:`rlwb.video.VideoError` raised carries the evaluation in its ``result``. With
    ``progress_every`` the evaluation shows its progress: a bar on a terminal, else a line
    every that many seconds. ``task_kwargs`` change task settings over the run's own
    (stronger wind, other goals, another time limit); the change is printed first, as
    ``task_kwargs changed: KEY OLD -> NEW, ...``.
    """
    saved = SavedRun.load(path)
    if episodes is None:
        episodes = saved.eval_episodes
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be an integer >= 1, got {episodes!r}")
    dev = resolve_device(device if device is not None else _saved_device(saved.train))
    task = saved.task
    saved_kwargs = saved.task_kwargs
    task_kwargs = {**saved_kwargs, **(task_kwargs or {})}
    eval_seed = int(seed) if seed is not None else saved.eval_seed
    if video is not None:
        from rlwb.video import check_renderable, check_video_path

        check_video_path(video)
        check_renderable(task, task_kwargs)  # fail before the evaluation, not after it
    engine = make_engine(
        task,
        episodes,
        backend=backend or saved.backend,
        device=dev,
        seed=eval_seed,
        **task_kwargs,
    )
    change = task_kwargs_change(saved_kwargs, task_kwargs)
    if change:  # once the engine accepted them
        print(change, flush=True)
    progress = PhaseProgress(progress_every) if progress_every is not None else None
    try:
        agent = saved.policy_agent(engine.spec, dev)
        agent.phase_reporter = progress
        returns, _ = run_evaluation(agent, engine, eval_seed, saved.eval_horizon)
    finally:
        if progress is not None:
            progress.close()
        engine.close()
    mean, std = mean_std(returns)
    result = (mean, std, [float(r) for r in returns])
    if video is not None:
        from rlwb.video import VideoError, record_video

        try:
            with evaluation_rng(agent, eval_seed):
                record_video(agent, task, video, seed=eval_seed, task_kwargs=task_kwargs)
        except VideoError as exc:  # the evaluation stands; the caller reports both
            exc.result = result
            raise
    return result


def task_kwargs_change(saved: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``"task_kwargs changed: wind_speed 2.0 -> 4.0, ..."`` for the keys whose value
    differs (``default`` where the run left a key at the task's default), or ``""``."""
    changed = [
        f"{key} {saved[key] if key in saved else 'default'} -> {value}"
        for key, value in new.items()
        if key not in saved or saved[key] != value
    ]
    return f"task_kwargs changed: {', '.join(changed)}" if changed else ""


def _saved_device(train: dict[str, Any]) -> str:
    saved = str(train.get("device", "auto"))
    return "auto" if saved.startswith("cuda") and not torch.cuda.is_available() else saved


def format_result(mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "nan"
    return f"{mean:.4f} ± {std:.4f} over {n} episode{'s' if n != 1 else ''}"
