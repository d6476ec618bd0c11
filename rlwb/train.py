"""The training runner: the loop every agent runs in, so an agent file holds only its algorithm.

``train`` drives a :class:`rlwb.agent.StepAgent` (act → engine.step → observe → update at
the update-to-data ratio: :mod:`rlwb.stepping`) or a :class:`rlwb.agent.IterationAgent`
(``iterate(engine)`` until the step budget), evaluates on a separate engine, logs to
TensorBoard and the console, writes checkpoints, resumes exactly from one, and stops cleanly
on Ctrl-C. The runner's parts, one job each:

* here: :class:`TrainConfig`, :class:`TrainResult` and the loop;
* :mod:`rlwb.stepping`: one step of a StepAgent (public: :func:`rlwb.stepping.training_steps`);
* :mod:`rlwb.training_run`: the live run (engines, agent, checkpoints, evaluation, video);
* :mod:`rlwb.resume`: resume and branching;
* :mod:`rlwb.saved_run`: the saved-run format (checkpoint, ``policy.pt``, ``config.yaml``);
* :mod:`rlwb.experiment`: ``run_experiment`` and its command-line glue (re-exported here).

Order of work at a step boundary, which exact resume relies on: log, then evaluate, then
checkpoint. The final checkpoint is written before the final evaluation, so evaluating the
final checkpoint (``rlwb eval``) reproduces the run's final evaluation.

At every log step the runner logs ``update()``'s losses under ``losses/`` and drains
:meth:`rlwb.agent.Agent.metrics` (each value under its own tag). ``on_end(agent, result,
logger)`` runs once after the final evaluation (also when a resumed run finishes), before the
logger closes; an interrupted run has no final evaluation and does not call it.

Long phases inside a step (an agent's catch-up updates, a generation, an evaluation) report
through :meth:`rlwb.agent.Agent.phase`: the runner shows their progress and answers a
SIGINT/SIGTERM with :class:`rlwb.agent.PhaseInterrupted` at the next unit. The step's
unfinished work ("update" or "eval") is then recorded in the checkpoint, and a resumed run
finishes it before the next step, so it ends as a run never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rlwb import checkpoint as ckpt
from rlwb import resume as resuming
from rlwb.agent import Agent, PhaseInterrupted, PhaseReporter
from rlwb.config import TaskKwargs, class_path, flatten, to_plain
from rlwb.env_steps import EnvStepLogger, action_repeat_of, agent_steps_for
from rlwb.errors import ConfigError
from rlwb.logger import RunLogger, log_observation_frames
from rlwb.resume import FIXED_ON_RESUME, explicit_fields  # noqa: F401 - importable from here
from rlwb.training_run import EVAL_SEED_OFFSET, TrainingRun, crossed  # noqa: F401

# The experiment glue, importable from here (loaded on first use: it imports this module).
_EXPERIMENT_NAMES = ("run_experiment", "print_summary", "experiment_name", "launch_command")


def __getattr__(name: str) -> Any:
    if name in _EXPERIMENT_NAMES:
        from rlwb import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


#: ``on_end(agent, result, logger)``: called once after a run's final evaluation with the
#: training agent, the run's result and its logger (still open: figures and scalars written
#: through it land in the run's TensorBoard events at the run's last step).
EndHook = Callable[[Agent, TrainResult, RunLogger], None]


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


seed_everything = ckpt.seed_everything


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


def train(
    agent_cls: type[Agent],
    agent_config: Any,
    train_config: TrainConfig,
    resume: str | pathlib.Path | None = None,
    explicit: Iterable[str] | None = None,
    launch: str | None = None,
    on_end: EndHook | None = None,
) -> TrainResult:
    """Train ``agent_cls(agent_config, spec, device)`` as ``train_config`` says.

    With ``resume`` (a checkpoint file, or a run or checkpoints folder: its latest), the run
    continues from the checkpoint with the checkpoint's settings. ``explicit`` names the
    dotted fields (``"train.total_steps"``) the caller set on purpose: only those change;
    None means every field of ``train_config`` that differs from the checkpoint's. Changing
    the task, backend, device, seed, members, task arguments or agent config is refused. ``launch``
    is how to start this experiment again (``"rlwb train NAME"``), for the resume hint.
    ``on_end(agent, result, logger)`` runs once after the final evaluation (see
    :data:`EndHook`); not when the run is interrupted.
    """
    resume_state = None
    if resume is not None:
        resume_state, train_config, agent_config = resuming.prepare(
            resume, agent_cls, agent_config, train_config, explicit
        )
    validate(train_config)
    train_config = resolve_budget(train_config)
    if resume_state is not None:
        step = resume_state.step
        changed = resume_state.history[-1]["changed"]
        budget_changed = {"train.total_steps", "train.total_env_steps"} & set(changed)
        if budget_changed and train_config.total_steps < step:
            raise ConfigError(
                f"train.total_steps {train_config.total_steps:,} is below step {step:,} that "
                f"the checkpoint {resume_state.source} reached; give at least {step:,}"
            )
    if train_config.video:
        from rlwb.video import check_renderable

        check_renderable(train_config.task, train_config.task_kwargs)
    run = TrainingRun(agent_cls, agent_config, train_config, resume_state)
    run.launch = launch
    try:
        return _loop(run, on_end)
    finally:
        run.close()


def _loop(run: TrainingRun, on_end: EndHook | None) -> TrainResult:
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
                            run.loop.run_updates(0)
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
        result = TrainResult(
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
        _release_reporter(run)
        if on_end is not None and not interrupted:
            on_end(run.agent, result, logger)
    finally:
        _release_reporter(run)
        logger.close()
    return result


def _release_reporter(run: TrainingRun) -> None:
    """The run's agents report their phases to nobody once the loop is over."""
    run.reporter = run.agent.phase_reporter = None
    if run.eval_agent is not None:
        run.eval_agent.phase_reporter = None


def _step_boundary(run: TrainingRun, logger: RunLogger, before: int, log: bool = True) -> None:
    """The work after the step from ``before`` to ``env_steps``, in the order exact resume
    relies on: log (unless ``log`` is False: already done), evaluate, checkpoint."""
    cfg, counters = run.cfg, run.counters
    now = counters.env_steps
    if log and (crossed(before, now, cfg.log_every) or now >= cfg.total_steps):
        then, step = run.rate_window
        run.rate_window = (time.perf_counter(), now)
        sps = (now - step) / max(run.rate_window[0] - then, 1e-9)
        logger.scalar("perf/steps_per_second", sps, now)
        logger.scalar("charts/updates", counters.updates, now)
        logger.scalars("losses", run.last_losses, now)
        logger.scalars("agent", run.agent.metrics(), now)  # full tags; bare keys: agent/
    logger.advance(now, force=now >= cfg.total_steps)
    if now < cfg.total_steps:
        if crossed(before, now, cfg.eval_every):
            counters.unfinished = "eval"
            run.evaluate(logger, now, before, final=False)
        if crossed(before, now, cfg.checkpoint_every):
            counters.unfinished = ""
            run.save_checkpoint()
    counters.unfinished = ""


def _phase_reporter(run: TrainingRun, logger: RunLogger, stop: _StopFlag) -> PhaseReporter:
    """What an agent's long phase reports to: progress on the console, and whether a
    signal asked the run to stop."""
    counters = run.counters

    def report(what: str, done: int, total: int) -> bool:
        logger.phase(what, done, total, counters.env_steps)
        return stop.requested

    return report


def _advance(run: TrainingRun, logger: RunLogger) -> bool:
    """One step of the agent: a batched env step and its updates, or one iteration. False
    when an iteration agent has no iteration left that fits the budget."""
    counters = run.counters
    if run.loop is not None:
        returns, lengths = run.loop.step()
        if returns:
            logger.episodes(returns, lengths, counters.env_steps)
        if counters.step_before < run.cfg.learning_starts <= counters.env_steps:
            logger.restart_rate(counters.env_steps)  # random actions (and a catch-up) are over
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
