"""The training runner: the loop every agent runs in, so an agent file holds only its algorithm.

``train`` drives a :class:`rlwb.agent.StepAgent` (act → engine.step → observe → update at
the update-to-data ratio) or a :class:`rlwb.agent.IterationAgent` (``iterate(engine)``
until the step budget), evaluates on a separate engine, logs to TensorBoard and the
console, writes checkpoints, resumes exactly from one, and stops cleanly on Ctrl-C.
``run_experiment`` is what an experiment script calls: command-line overrides (tyro),
training, final evaluation, a summary.

Order of work at a step boundary, which exact resume relies on: log, then evaluate, then
checkpoint. The final checkpoint is written before the final evaluation, so evaluating the
final checkpoint (``rlwb eval``) reproduces the run's final evaluation. Evaluation runs a
separate agent loaded with the policy state on its own random numbers, so it never changes
training; each evaluation also writes ``policy.pt``.

Long phases inside a step (an agent's catch-up updates, a generation, an evaluation) report
through :meth:`rlwb.agent.Agent.phase`: the runner shows their progress and answers a
SIGINT/SIGTERM with :class:`rlwb.agent.PhaseInterrupted` at the next unit. The step's
unfinished work ("update" or "eval") is then recorded in the checkpoint, and a resumed run
finishes it before the next step, so it ends as a run never stopped.

Resume: every setting comes from the checkpoint; only fields named explicitly (on the
command line, or passed to :func:`train` with values that differ) change, and those that
cannot change (task, backend, device, seed, members, task arguments, the agent's config) are
refused.
``config.yaml`` lists each resume with what changed. Resuming from a checkpoint that is not
its folder's newest starts a branch in a new run folder, so the abandoned branch's files
stay as they were; the checkpoint a run resumed from is never rotated away.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
import tyro
import yaml

import rlwb
from rlwb import checkpoint as ckpt
from rlwb.agent import (
    NUM_UPDATES,
    Agent,
    IterationAgent,
    PhaseInterrupted,
    PhaseReporter,
    StepAgent,
    act_on,
)
from rlwb.config import (
    TaskKwargs,
    class_path,
    dump_yaml,
    flatten,
    from_dict,
    parse_cli,
    same_class,
    to_plain,
)
from rlwb.engine import Engine, make_engine
from rlwb.env_steps import EnvStepLogger, action_repeat_of, agent_steps_for
from rlwb.errors import CheckpointError, ConfigError, RlwbError
from rlwb.evaluate import (
    evaluation_rng,
    load_policy,
    mean_std,
    overrides_policy,
    policy_entry,
    resolve_device,
    run_evaluation,
    spec_to_dict,
)
from rlwb.logger import RunLogger, log_observation_frames

EVAL_SEED_OFFSET = 10_000  # default evaluation seed: seed + this (disjoint from training)


@dataclass
class TrainConfig:
    """How to train: task, engine, budget, cadences and output."""

    task: str
    """Task id: an rlwb task or any Gymnasium id (see `rlwb list`)."""
    backend: str = "auto"
    """Engine backend: auto, mujoco, warp, torch or gym."""
    device: str = "auto"
    """Torch device for engine and agent; auto = cuda if available, else cpu."""
    num_envs: int = 1
    """Parallel environment members in the training engine."""
    seed: int = 0
    """Seed of the engine, the agent's initialisation and the warm-up actions."""
    total_steps: int = 100_000
    """Budget in environment steps, summed over members."""
    total_env_steps: int | None = None
    """Budget in env steps as papers count them (agent steps x the task's action repeat);
    when set, total_steps = ceil(total_env_steps / action_repeat)."""
    learning_starts: int = 0
    """Uniform random actions and no updates before this many environment steps."""
    updates_per_step: float = 1.0
    """Gradient updates per environment step (summed over members); fractions accumulate."""
    eval_every: int = 10_000
    """Evaluate every this many environment steps (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (one member each, run in parallel)."""
    eval_seed: int | None = None
    """Seed of every evaluation (default: seed + 10000), so evaluations are comparable."""
    eval_horizon: int | None = None
    """Evaluation episode length cap (default: the task's time limit)."""
    checkpoint_every: int = 10_000
    """Checkpoint every this many environment steps (0: only at the end)."""
    keep_checkpoints: int = 3
    """How many of the latest checkpoints to keep."""
    log_every: int = 1_000
    """Log losses and speed every this many environment steps."""
    run_dir: str = "runs"
    """Folder that holds the runs."""
    run_name: str | None = None
    """Run folder name (default: <experiment>-<task>-<seed>-<time>)."""
    experiment: str | None = None
    """Experiment name (set by run_experiment from the script's module)."""
    video: bool = False
    """Write an mp4 of the final evaluation policy to <run>/videos/ (MuJoCo: MUJOCO_GL=egl)."""
    video_every: int = 0
    """Also write a video at evaluations every this many steps (0: only the final one)."""
    task_kwargs: TaskKwargs = field(default_factory=dict)
    """Keyword arguments of the task (Gymnasium's env arguments, e.g. frame_skip 4)."""
    progress: bool = True
    """Show progress: a live bar on a terminal, else a line every progress_every seconds."""
    progress_every: float = 30.0
    """Seconds between progress lines when the output is not a terminal (a file, a pipe)."""


@dataclass
class TrainResult:
    """What a finished (or interrupted) run leaves behind."""

    run_dir: pathlib.Path
    checkpoint: pathlib.Path | None
    eval_mean: float
    eval_std: float
    eval_returns: list[float]
    env_steps: int
    updates: int
    wall_time: float
    interrupted: bool = False
    stop_signal: int = 0
    """The signal that stopped an interrupted run (SIGINT, SIGTERM), else 0."""
    step_scale: int = 1
    """Env steps per agent step (``env_steps`` counts agent steps)."""


@dataclass
class _Counters:
    env_steps: int = 0
    updates: int = 0
    utd_accumulator: float = 0.0
    episodes: int = 0
    iterations: int = 0
    wall_time: float = 0.0
    last_checkpoint_step: int = -1
    unfinished: str = ""
    """Work of the step ending at ``env_steps`` that a stop interrupted ("update", "eval");
    a resumed run finishes it first."""
    step_before: int = 0
    """``env_steps`` before the current step (what a finished step's boundary work needs)."""


# Fields a resumed run refuses to change: the run would no longer be the same experiment.
# (device too: agent generators and engine states are device-specific)
FIXED_ON_RESUME = ("task", "backend", "device", "num_envs", "seed", "task_kwargs")
# Fields that name where a run lives, not how it trains (never taken from a checkpoint).
_PLACEMENT = ("run_dir", "run_name", "experiment")


def validate(cfg: TrainConfig) -> None:
    """Reject impossible settings with one clear message."""
    checks = [
        ("num_envs", cfg.num_envs >= 1, ">= 1"),
        ("total_steps", cfg.total_steps >= 1, ">= 1"),
        ("learning_starts", cfg.learning_starts >= 0, ">= 0"),
        (
            "updates_per_step",
            math.isfinite(cfg.updates_per_step) and cfg.updates_per_step >= 0,
            ">= 0",
        ),
        ("eval_every", cfg.eval_every >= 0, ">= 0"),
        ("eval_episodes", cfg.eval_episodes >= 1, ">= 1"),
        ("checkpoint_every", cfg.checkpoint_every >= 0, ">= 0"),
        ("keep_checkpoints", cfg.keep_checkpoints >= 1, ">= 1"),
        ("log_every", cfg.log_every >= 1, ">= 1"),
        ("video_every", cfg.video_every >= 0, ">= 0"),
        ("progress_every", cfg.progress_every >= 0, ">= 0"),
    ]
    for name, ok, rule in checks:
        if not ok:
            raise ConfigError(f"train.{name} must be {rule}, got {getattr(cfg, name)!r}")
    if cfg.eval_horizon is not None and cfg.eval_horizon < 1:
        raise ConfigError(f"train.eval_horizon must be >= 1, got {cfg.eval_horizon!r}")
    if cfg.total_env_steps is not None and cfg.total_env_steps < 1:
        raise ConfigError(f"train.total_env_steps must be >= 1, got {cfg.total_env_steps!r}")


def resolve_budget(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with ``total_steps`` (agent steps) derived from ``total_env_steps``."""
    if cfg.total_env_steps is None:
        return cfg
    repeat = action_repeat_of(cfg.task_kwargs)
    return dataclasses.replace(cfg, total_steps=agent_steps_for(cfg.total_env_steps, repeat))


def budget_as_given(cfg: TrainConfig, explicit: set[str]) -> TrainConfig:
    """An explicit ``--train.total-steps`` wins over an experiment's default env-step budget;
    both explicit is a conflict."""
    if "train.total_steps" not in explicit:
        return cfg
    if "train.total_env_steps" in explicit:
        raise ConfigError(
            "give train.total_steps (agent steps) or train.total_env_steps (agent steps x "
            "action repeat), not both"
        )
    explicit.add("train.total_env_steps")  # a resume drops the saved env-step budget too
    return dataclasses.replace(cfg, total_env_steps=None)


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every < after // every


seed_everything = ckpt.seed_everything


def _unique_dir(root: pathlib.Path, name: str) -> pathlib.Path:
    path, n = root / name, 1
    while path.exists():
        n += 1
        path = root / f"{name}-{n}"
    path.mkdir(parents=True)
    return path


def _new_run_dir(cfg: TrainConfig, agent_cls: type) -> pathlib.Path:
    prefix = cfg.experiment or agent_cls.__name__.lower()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = cfg.run_name or f"{prefix}-{cfg.task}-{cfg.seed}-{stamp}"
    return _unique_dir(pathlib.Path(cfg.run_dir), name)


class _StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM (schedulers, ``timeout``) asks the loop to stop after the
    current step, or a long phase at its next unit; a second signal aborts."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal = 0
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal != 0

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


@dataclass
class _Resume:
    """Where a resumed run continues and what its checkpoint holds."""

    payload: dict[str, Any]
    source: pathlib.Path
    run_dir: pathlib.Path
    branch: bool
    history: list[dict[str, Any]]


class _Run:
    """One training run's live objects (engines, agent, logger, counters)."""

    def __init__(
        self,
        agent_cls: type[Agent],
        agent_config: Any,
        cfg: TrainConfig,
        resume: _Resume | None,
    ) -> None:
        self.agent_cls, self.agent_config = agent_cls, agent_config
        self.payload = resume.payload if resume else None
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        backend = self.payload["backend"] if self.payload else cfg.backend
        self.engine: Engine = make_engine(
            cfg.task,
            cfg.num_envs,
            backend=backend,
            device=self.device,
            seed=cfg.seed,
            **dict(cfg.task_kwargs),
        )
        self.eval_engine: Engine | None = None
        try:
            self._build(agent_cls, agent_config, cfg, resume)
        except BaseException:
            self.close()
            raise

    def _build(
        self, agent_cls: type[Agent], agent_config: Any, cfg: TrainConfig, resume: _Resume | None
    ) -> None:
        eval_seed = cfg.seed + EVAL_SEED_OFFSET if cfg.eval_seed is None else cfg.eval_seed
        self.cfg = dataclasses.replace(
            cfg, backend=self.engine.backend, device=str(self.device), eval_seed=eval_seed
        )
        self.eval_engine = self.engine.spawn(cfg.eval_episodes, seed=eval_seed)
        self.agent: Agent = agent_cls(agent_config, self.engine.spec, self.device)
        if not isinstance(self.agent, StepAgent | IterationAgent):
            raise ConfigError(
                f"{class_path(agent_cls)} is neither a StepAgent nor an IterationAgent"
            )
        self.eval_agent: Agent | None = None  # built at the first evaluation
        # env steps per agent step on the logged axis; a resumed run keeps its own
        saved_scale = self.payload.get("step_scale", 1) if self.payload else None
        self.step_scale = self.engine.spec.action_repeat if saved_scale is None else saved_scale
        self.reporter: PhaseReporter | None = None  # set for the loop's length
        self.launch: str | None = None  # how to start the experiment again
        self.action_generator = torch.Generator().manual_seed(cfg.seed)
        self.counters = _Counters()
        self.history = resume.history if resume else []
        if resume is None:
            self.run_dir = _new_run_dir(self.cfg, agent_cls)
        else:
            self.run_dir = resume.run_dir
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints = ckpt.CheckpointManager(
            self.run_dir / "checkpoints",
            self.cfg.keep_checkpoints,
            protect=resume.source if resume and not resume.branch else None,
        )
        self.last_losses: dict[str, float] = {}
        self.rate_window = (time.perf_counter(), 0)  # time, env steps: steps/s for TensorBoard
        self.eval_result: tuple[float, float, list[float]] = (math.nan, math.nan, [])
        self.eval_step: int | None = None  # step of eval_result (None: not this session)
        self.obs: torch.Tensor | None = None
        if self.payload:
            self._restore(self.payload)
        else:
            self.obs = self.engine.reset(seed=cfg.seed)
            if isinstance(self.agent, StepAgent):
                self.agent.episode_start(
                    torch.ones(cfg.num_envs, dtype=torch.bool, device=self.device)
                )
        self._write_config()

    # ------------------------------------------------------------------ state
    def config_dict(self) -> dict[str, Any]:
        data = {
            "experiment": self.cfg.experiment,
            "agent_class": class_path(self.agent_cls),
            "agent_config_class": class_path(self.agent_config),
            "train": to_plain(self.cfg),
            "agent": to_plain(self.agent_config),
            "engine": {
                "backend": self.engine.backend,
                "observation_shape": list(self.engine.spec.observation_shape),
                "action_dim": self.engine.spec.action_dim,
                "max_episode_steps": self.engine.spec.max_episode_steps,
                "dt": self.engine.spec.dt,
            },
            "rlwb_version": rlwb.__version__,
            "torch_version": torch.__version__,
            "step_scale": self.step_scale,  # TensorBoard steps = agent steps x this
        }
        if self.history:
            data["resumes"] = self.history
        return data

    def _write_config(self) -> None:
        dump_yaml(self.config_dict(), self.run_dir / "config.yaml")

    def header(self) -> dict[str, Any]:
        """What rebuilds the agent and its evaluation (shared by checkpoints and policy.pt)."""
        return {
            "rlwb_version": rlwb.__version__,
            "created": time.time(),
            "experiment": self.cfg.experiment,
            "agent_class": class_path(self.agent_cls),
            "agent_config_class": class_path(self.agent_config),
            "agent_config": to_plain(self.agent_config),
            "train_config": to_plain(self.cfg),
            "backend": self.engine.backend,
            "spec": spec_to_dict(self.engine.spec),
            "env_steps": self.counters.env_steps,
            "step_scale": self.step_scale,
        }

    def payload_now(self) -> dict[str, Any]:
        payload = {
            **self.header(),
            "agent": self.agent.state_dict(),
            "engine": self.engine.state_dict(),
            "obs": self.obs.cpu() if isinstance(self.agent, StepAgent) else None,
            "rng": {"global": ckpt.rng_state(), "actions": self.action_generator.get_state()},
            "counters": dataclasses.asdict(self.counters),
            "eval": list(self.eval_result[:2]) + [list(self.eval_result[2])],
            "resumes": self.history,
        }
        if overrides_policy(self.agent):  # else the policy is the agent state itself
            payload.update(policy_entry(self.agent))
        return payload

    def _restore(self, payload: dict[str, Any]) -> None:
        try:
            self.agent.load_state_dict(payload["agent"])
            self.engine.load_state_dict(payload["engine"])
            counters = dict(payload["counters"])
            self.counters = _Counters(**counters)
            self.action_generator.set_state(payload["rng"]["actions"])
            ckpt.set_rng_state(payload["rng"]["global"])
            obs = payload.get("obs")
            dtype = self.engine.spec.observation_dtype  # float state vectors, uint8 images
            self.obs = obs.to(self.device, dtype) if obs is not None else None
            mean, std, returns = payload.get("eval", [math.nan, math.nan, []])
            self.eval_result = (mean, std, list(returns))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint does not match this run: {exc}") from None

    def save_checkpoint(self) -> pathlib.Path:
        self.counters.last_checkpoint_step = self.counters.env_steps
        return self.checkpoints.save(self.payload_now(), self.counters.env_steps)

    # ------------------------------------------------------------------ evaluation
    def _evaluation_agent(self) -> Agent:
        """A second agent, built for the evaluation engine, holding the current policy."""
        if self.eval_agent is None:
            with evaluation_rng(self.agent, self.cfg.eval_seed):  # construction draws RNG
                spec = self.eval_engine.spec
                self.eval_agent = self.agent_cls(self.agent_config, spec, self.device)
        self.eval_agent.phase_reporter = self.reporter
        load_policy(self.eval_agent, policy_entry(self.agent))
        return self.eval_agent

    def evaluate(self, logger: RunLogger, step: int, before: int, final: bool) -> None:
        agent = self._evaluation_agent()
        returns, lengths = run_evaluation(
            agent, self.eval_engine, self.cfg.eval_seed, self.cfg.eval_horizon
        )
        mean, std = mean_std(returns)
        self.eval_result = (mean, std, [float(r) for r in returns])
        self.eval_step = step
        logger.scalar("eval/return_mean", mean, step)
        logger.scalar("eval/return_std", std, step)
        logger.scalar("eval/length_mean", float(lengths.to(torch.float64).mean()), step)
        logger.last_eval = f"{mean:.1f}"
        episodes = f"{len(returns)} episode{'s' * (len(returns) != 1)}"
        logger.print(f"step {logger.x(step):,}: eval return {mean:.2f} ± {std:.2f} ({episodes})")
        self.save_policy()
        video_due = self.cfg.video and (final or _crossed(before, step, self.cfg.video_every))
        if video_due:
            self._video(agent, logger, step)

    def save_policy(self) -> pathlib.Path:
        """``policy.pt``: the policy state and how to rebuild the agent (no replay, no
        optimizer), for ``rlwb eval``."""
        payload = {**self.header(), **policy_entry(self.agent)}
        return ckpt.save(self.run_dir / ckpt.POLICY_FILE, payload, kind=ckpt.POLICY_FORMAT)

    def _video(self, agent: Agent, logger: RunLogger, step: int) -> None:
        from rlwb.video import record_video

        path = self.run_dir / "videos" / f"eval_step_{step:012d}.mp4"
        try:
            with evaluation_rng(agent, self.cfg.eval_seed):
                frames, fps = record_video(
                    agent, self.cfg.task, path, self.cfg.eval_seed, self.cfg.task_kwargs
                )
            logger.video("eval/video", frames, step, fps)
            logger.print(f"video: {path}")
        except RlwbError as exc:  # a video is not worth losing the run over
            logger.print(f"warning: no video: {exc}")

    def close(self) -> None:
        self.engine.close()
        if self.eval_engine is not None:
            self.eval_engine.close()


def explicit_fields(argv: Iterable[str]) -> set[str]:
    """Dotted config fields a command line sets (``--train.total-steps 5`` ->
    ``train.total_steps``; ``--train.no-video`` -> ``train.video``)."""
    names: set[str] = set()
    for token in argv:
        if not token.startswith("--") or "." not in token:
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        section, _, rest = name.partition(".")
        top = rest.split(".", 1)[0]
        names.add(f"{section}.{top}")
        if top.startswith("no_"):
            names.add(f"{section}.{top[3:]}")
    return names


def _resume_configs(
    saved: TrainConfig,
    saved_agent: Any,
    given: TrainConfig,
    given_agent: Any,
    explicit: set[str] | None,
) -> tuple[TrainConfig, dict[str, list[Any]]]:
    """The checkpoint's train config with the explicitly given changes, and those changes
    as ``{"train.field": [old, new]}``. ``explicit`` None: every field that differs."""

    def named(section: str, name: str) -> bool:
        return explicit is None or f"{section}.{name}" in explicit

    changes: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        old, new = getattr(saved, f.name), getattr(given, f.name)
        if f.name in _PLACEMENT or not named("train", f.name) or old == new:
            continue
        if f.name in ("backend", "device", "eval_seed") and new in ("auto", None):
            continue
        changes[f.name] = new
    agent_changes = [
        f.name
        for f in dataclasses.fields(saved_agent)
        if named("agent", f.name) and getattr(saved_agent, f.name) != getattr(given_agent, f.name)
    ]
    fixed = [f"train.{k}" for k in changes if k in FIXED_ON_RESUME]
    fixed += [f"agent.{k}" for k in agent_changes]
    if fixed:
        raise ConfigError(
            f"cannot change {', '.join(fixed)} when resuming (the checkpoint was trained with "
            "other values); start a new run instead"
        )
    old = {k: to_plain(getattr(saved, k)) for k in changes}
    recorded = {f"train.{k}": [old[k], to_plain(v)] for k, v in changes.items()}
    return dataclasses.replace(saved, **changes), recorded


def _prepare_resume(
    resume: str | pathlib.Path, agent_cls: type[Agent]
) -> tuple[dict[str, Any], pathlib.Path, pathlib.Path, bool]:
    """Load the checkpoint; the run folder to continue in and whether it is a new branch."""
    path = ckpt.resolve(resume)
    payload = ckpt.load(path)
    if not same_class(payload.get("agent_class"), agent_cls):
        raise CheckpointError(
            f"{path} holds a {payload.get('agent_class')} agent, not {class_path(agent_cls)}"
        )
    step = int(payload["counters"]["env_steps"])
    run_dir = path.parent.parent
    newer = [p for p in ckpt.CheckpointManager(path.parent).existing() if ckpt.step_of(p) > step]
    if not newer:
        return payload, path, run_dir, False
    # An older checkpoint: continue in a new run folder, keep the abandoned branch intact,
    # and carry its TensorBoard events up to the branch point (the writer purges the rest).
    branch = _unique_dir(run_dir.parent, f"{run_dir.name}-from-{step}")
    for events in run_dir.glob("events.out.tfevents.*"):
        shutil.copy2(events, branch / events.name)
    return payload, path, branch, True


def _resume_history(
    payload: dict[str, Any], run_dir: pathlib.Path, branch: bool
) -> list[dict[str, Any]]:
    """Earlier resumes: the checkpoint's, or, continuing in its own folder, the folder's
    ``config.yaml`` (which also lists resumes that wrote no checkpoint)."""
    history = list(payload.get("resumes") or [])
    config = run_dir / "config.yaml"
    if not branch and config.is_file():
        try:
            listed = (yaml.safe_load(config.read_text()) or {}).get("resumes")
        except (yaml.YAMLError, AttributeError):  # an edited or damaged file: not the record
            listed = None
        if isinstance(listed, list) and len(listed) > len(history):
            history = listed
    return history


def train(
    agent_cls: type[Agent],
    agent_config: Any,
    train_config: TrainConfig,
    resume: str | pathlib.Path | None = None,
    explicit: Iterable[str] | None = None,
    launch: str | None = None,
) -> TrainResult:
    """Train ``agent_cls(agent_config, spec, device)`` as ``train_config`` says.

    With ``resume`` (a checkpoint file, or a run or checkpoints folder: its latest), the run
    continues from the checkpoint with the checkpoint's settings. ``explicit`` names the
    dotted fields (``"train.total_steps"``) the caller set on purpose: only those change;
    None means every field of ``train_config`` that differs from the checkpoint's. Changing
    the task, backend, device, seed, members, task arguments or agent config is refused. ``launch``
    is how to start this experiment again (``"rlwb train NAME"``), for the resume hint.
    """
    resume_state = None
    if resume is not None:
        payload, source, run_dir, branch = _prepare_resume(resume, agent_cls)
        saved = from_dict(TrainConfig, payload["train_config"])
        saved_agent = from_dict(type(agent_config), payload["agent_config"])
        names = set(explicit) if explicit is not None else None
        train_config, changed = _resume_configs(
            saved, saved_agent, train_config, agent_config, names
        )
        agent_config = saved_agent
        step = int(payload["counters"]["env_steps"])
        history = _resume_history(payload, run_dir, branch)
        history.append(
            {
                "at_step": step,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "from": str(source),
                "branch": branch,
                "changed": changed,
            }
        )
        resume_state = _Resume(payload, source, run_dir, branch, history)
    validate(train_config)
    train_config = resolve_budget(train_config)
    if resume_state is not None:
        step = int(resume_state.payload["counters"]["env_steps"])
        budget_changed = {"train.total_steps", "train.total_env_steps"} & set(changed)
        if budget_changed and train_config.total_steps < step:
            raise ConfigError(
                f"train.total_steps {train_config.total_steps:,} is below step {step:,} that "
                f"the checkpoint {resume_state.source} reached; give at least {step:,}"
            )
    if train_config.video:
        from rlwb.video import check_renderable

        check_renderable(train_config.task, train_config.task_kwargs)
    run = _Run(agent_cls, agent_config, train_config, resume_state)
    run.launch = launch
    try:
        return _loop(run)
    finally:
        run.close()


def _loop(run: _Run) -> TrainResult:
    cfg, counters = run.cfg, run.counters
    logger = EnvStepLogger(
        run.run_dir,
        cfg.total_steps,
        counters.env_steps,
        scale=run.step_scale,
        progress=cfg.progress,
        line_every=cfg.progress_every,
    )
    if run.payload is None:
        logger.hparams(
            flatten({"train": to_plain(cfg), "agent": to_plain(run.agent_config)}),
            ("eval/return_mean",),
        )
        yaml_text = (run.run_dir / "config.yaml").read_text()
        logger.text("config", "    " + yaml_text.replace("\n", "\n    "))  # markdown code
        logger.print(f"run: {run.run_dir}  ({cfg.task} on {run.engine.backend}, {run.device})")
        log_observation_frames(logger, run.obs, counters.env_steps)
    else:
        last = run.history[-1]
        changed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in last["changed"].items())
        kind = "branching into" if last["branch"] else "resuming"
        logger.print(
            f"{kind} {run.run_dir} at step {counters.env_steps:,} with the checkpoint's "
            f"settings{'; changed: ' + changed if changed else ''}"
        )
    start_time = time.perf_counter()
    start_wall = counters.wall_time
    run.rate_window = (start_time, counters.env_steps)
    interrupted, stop_signal, final, finished = False, 0, False, False
    try:
        with _StopFlag() as stop:
            run.reporter = _phase_reporter(run, logger, stop)
            run.agent.phase_reporter = run.reporter
            if run.eval_agent is not None:
                run.eval_agent.phase_reporter = run.reporter
            try:
                while not stop.requested:
                    stage = counters.unfinished
                    if stage:  # an interrupted step, finished after a resume
                        before = counters.step_before
                        if stage == "update":
                            _run_updates(run, 0)
                            logger.restart_rate(counters.env_steps)
                    elif counters.env_steps < cfg.total_steps:
                        before = counters.step_before = counters.env_steps
                        if not _advance(run, logger):
                            break  # no iteration fits in the steps left
                    else:
                        break
                    counters.wall_time = start_wall + time.perf_counter() - start_time
                    _step_boundary(run, logger, before, log=stage != "eval")
                if not stop.requested:
                    if counters.last_checkpoint_step != counters.env_steps:
                        run.save_checkpoint()
                    final = True  # a resume from the final checkpoint evaluates again
                    if run.eval_step != counters.env_steps or cfg.video:  # not done yet
                        run.evaluate(logger, counters.env_steps, counters.env_steps, final=True)
                    finished = True
            except PhaseInterrupted:
                if not stop.requested:  # raised by something else than this run's reporter
                    raise
                # The agent's state is consistent; an interrupted update or iteration changed
                # it since any checkpoint of this step, an interrupted evaluation did not.
                if not final and counters.unfinished != "eval":
                    counters.last_checkpoint_step = -1
            if stop.requested and not finished:
                counters.wall_time = start_wall + time.perf_counter() - start_time
                if counters.last_checkpoint_step != counters.env_steps:
                    run.save_checkpoint()
                interrupted, stop_signal = True, stop.signal
        path = run.checkpoints.latest()
        if interrupted:
            name = signal.Signals(stop_signal).name
            logger.print(f"interrupted at step {counters.env_steps:,} ({name}); checkpoint {path}")
            command = f"{run.launch} " if run.launch else ""
            logger.print(f"resume with: {command}--resume {path}")
            mean, std, returns = math.nan, math.nan, []
        else:
            mean, std, returns = run.eval_result
    finally:
        run.reporter = run.agent.phase_reporter = None
        if run.eval_agent is not None:
            run.eval_agent.phase_reporter = None
        logger.close()
    return TrainResult(
        run_dir=run.run_dir,
        checkpoint=path,
        eval_mean=mean,
        eval_std=std,
        eval_returns=returns,
        env_steps=counters.env_steps,
        updates=counters.updates,
        wall_time=counters.wall_time,
        interrupted=interrupted,
        stop_signal=stop_signal,
        step_scale=run.step_scale,
    )


def _step_boundary(run: _Run, logger: RunLogger, before: int, log: bool = True) -> None:
    """The work after the step from ``before`` to ``env_steps``, in the order exact resume
    relies on: log (unless ``log`` is False: already done), evaluate, checkpoint."""
    cfg, counters = run.cfg, run.counters
    now = counters.env_steps
    if log and (_crossed(before, now, cfg.log_every) or now >= cfg.total_steps):
        then, step = run.rate_window
        run.rate_window = (time.perf_counter(), now)
        sps = (now - step) / max(run.rate_window[0] - then, 1e-9)
        logger.scalar("perf/steps_per_second", sps, now)
        logger.scalar("charts/updates", counters.updates, now)
        logger.scalars("losses", run.last_losses, now)
    logger.advance(now, force=now >= cfg.total_steps)
    if now < cfg.total_steps:
        if _crossed(before, now, cfg.eval_every):
            counters.unfinished = "eval"
            run.evaluate(logger, now, before, final=False)
        if _crossed(before, now, cfg.checkpoint_every):
            counters.unfinished = ""
            run.save_checkpoint()
    counters.unfinished = ""


def _phase_reporter(run: _Run, logger: RunLogger, stop: _StopFlag) -> PhaseReporter:
    """What an agent's long phase reports to: progress on the console, and whether a
    signal asked the run to stop."""
    counters = run.counters

    def report(what: str, done: int, total: int) -> bool:
        logger.phase(what, done, total, counters.env_steps)
        return stop.requested

    return report


def _advance(run: _Run, logger: RunLogger) -> bool:
    """One step of the agent: a batched env step and its updates, or one iteration. False
    when an iteration agent has no iteration left that fits the budget."""
    counters = run.counters
    if isinstance(run.agent, StepAgent):
        _env_step(run, logger)
        return True
    before = counters.env_steps
    run.agent.step_budget = run.cfg.total_steps
    metrics = run.agent.iterate(run.engine)
    if metrics is None:
        return False
    counters.iterations += 1
    counters.env_steps = int(run.agent.env_steps)
    if counters.env_steps <= before:
        raise RuntimeError(f"{class_path(run.agent)}.iterate() did not advance env_steps")
    logger.scalars("charts", metrics, counters.env_steps)
    return True


def _random_actions(run: _Run) -> torch.Tensor:
    spec = run.engine.spec
    low, high = spec.action_low.cpu(), spec.action_high.cpu()
    low = torch.where(torch.isfinite(low), low, -torch.ones_like(low))
    high = torch.where(torch.isfinite(high), high, torch.ones_like(high))
    u = torch.rand(
        (run.engine.num_envs, spec.action_dim), generator=run.action_generator, dtype=low.dtype
    )
    return (low + (high - low) * u).to(run.device)


def _env_step(run: _Run, logger: RunLogger) -> None:
    """One batched environment step of a StepAgent, then its updates."""
    cfg, counters, agent = run.cfg, run.counters, run.agent
    assert isinstance(agent, StepAgent)
    if counters.env_steps < cfg.learning_starts:
        action = _random_actions(run)
    else:
        with torch.no_grad():
            action = act_on(agent, run.engine, run.obs, explore=True)
    next_obs, reward, terminated, truncated, info = run.engine.step(action)
    done = info["done"]
    mask = done.reshape(done.shape + (1,) * (next_obs.ndim - 1))
    real_next = torch.where(mask, info["final_obs"], next_obs)
    agent.observe(run.obs, action, reward, real_next, terminated, truncated)
    run.obs = next_obs
    counters.env_steps += run.engine.num_envs
    if bool(done.any()):
        agent.episode_start(done)
        returns = info["episode_return"][done].tolist()
        lengths = info["episode_length"][done].tolist()
        counters.episodes += len(returns)
        logger.episodes(returns, lengths, counters.env_steps)
    if counters.env_steps >= cfg.learning_starts and cfg.updates_per_step > 0:
        counters.utd_accumulator += cfg.updates_per_step * run.engine.num_envs
        n = int(counters.utd_accumulator)
        if n > 0:
            counters.utd_accumulator -= n
            _run_updates(run, n)
    if counters.step_before < cfg.learning_starts <= counters.env_steps:
        logger.restart_rate(counters.env_steps)  # random actions (and a catch-up) are over


def _run_updates(run: _Run, n: int) -> None:
    """``agent.update(n)``, marked unfinished while it runs: an update that a stop
    interrupts (a catch-up reporting its phase) is finished by ``update(0)`` on resume."""
    run.counters.unfinished = "update"
    losses = dict(run.agent.update(n) or {})
    run.counters.unfinished = ""
    run.counters.updates += int(losses.pop(NUM_UPDATES, n))
    run.last_losses = losses


# ---------------------------------------------------------------------- experiments
def experiment_name(config_cls: type) -> str:
    module = config_cls.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is not None and spec.name:
            return spec.name.rsplit(".", 1)[-1]
        return pathlib.Path(sys.argv[0]).stem or "experiment"
    return module.rsplit(".", 1)[-1]


def launch_command(config_cls: type) -> str:
    """``rlwb train X``, with X as ``rlwb train`` finds this experiment again."""
    module = config_cls.__module__
    given = getattr(sys.modules.get(module), "__rlwb_experiment__", None)  # a .py file
    if given:
        return f"rlwb train {given}"
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None and spec.name else sys.argv[0]
    short = module.removeprefix("rlwb.experiments.")
    return f"rlwb train {short}"


def _with_resume(config_cls: type) -> type:
    """``config_cls`` plus a ``--resume PATH`` option, for tyro."""
    resume_type = Annotated[
        str | None,
        tyro.conf.arg(
            help="Continue from this checkpoint (file, or run folder: its latest) with its "
            "settings; options given with it change those settings."
        ),
    ]
    return dataclasses.make_dataclass(
        config_cls.__name__,
        [("resume", resume_type, field(default=None))],
        bases=(config_cls,),
    )


def run_experiment(
    agent_cls: type[Agent],
    config_cls: type,
    argv: list[str] | None = None,
    description: str | None = None,
) -> TrainResult:
    """Parse overrides of ``config_cls`` (fields ``train`` and ``agent``), train, summarise.

    Called with ``argv=None`` (``python -m rlwb.experiments.X``), it reads ``sys.argv`` and
    behaves as ``rlwb train X``: a bad option is one line on stderr and exit code 2, an
    interrupted run exits with 128 + the signal number.
    """
    if argv is None:
        from rlwb.cli import run_as_command

        return run_as_command(lambda: _run_experiment(agent_cls, config_cls, None, description))
    return _run_experiment(agent_cls, config_cls, argv, description)


def _run_experiment(
    agent_cls: type[Agent], config_cls: type, argv: list[str] | None, description: str | None
) -> TrainResult:
    if not dataclasses.is_dataclass(config_cls):
        raise ConfigError(f"{config_cls!r} must be a dataclass with fields 'train' and 'agent'")
    args = sys.argv[1:] if argv is None else list(argv)
    parsed = parse_cli(
        _with_resume(config_cls), args, description=description or config_cls.__doc__
    )
    config = config_cls(
        **{f.name: getattr(parsed, f.name) for f in dataclasses.fields(config_cls) if f.init}
    )
    explicit = explicit_fields(args)
    train_cfg: TrainConfig = budget_as_given(config.train, explicit)
    if train_cfg.experiment is None:
        train_cfg = dataclasses.replace(train_cfg, experiment=experiment_name(config_cls))
    result = train(
        agent_cls,
        config.agent,
        train_cfg,
        resume=parsed.resume,
        explicit=explicit,
        launch=launch_command(config_cls),
    )
    print_summary(result)
    return result


def print_summary(result: TrainResult) -> None:
    from rich.console import Console

    from rlwb.evaluate import format_result

    console = Console()
    console.print(f"run dir:     {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"checkpoint:  {result.checkpoint}", highlight=False, soft_wrap=True)
    steps, scale = result.env_steps, result.step_scale
    agent_steps = f"{steps:,} agent steps x {scale}, " if scale > 1 else ""
    console.print(
        f"env steps:   {steps * scale:,} ({agent_steps}{result.updates:,} updates, "
        f"{result.wall_time:.1f} s)",
        highlight=False,
    )
    if result.interrupted:
        console.print("interrupted: no final evaluation (resume with the line above)")
    else:
        n = len(result.eval_returns)
        console.print(
            f"final eval:  {format_result(result.eval_mean, result.eval_std, n)}", highlight=False
        )
    console.print(
        f"watch:       tensorboard --logdir {result.run_dir.parent}",
        highlight=False,
        soft_wrap=True,
    )
    if result.checkpoint is not None:
        console.print(
            f"evaluate:    rlwb eval {result.checkpoint}", highlight=False, soft_wrap=True
        )
