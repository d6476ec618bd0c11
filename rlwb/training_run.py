"""One training run's live objects: engines, agent, counters, run folder; and what the
runner does with them at step boundaries besides stepping: checkpoints, evaluation,
``policy.pt`` and videos.

Evaluation runs a separate agent loaded with the policy state on its own random numbers,
so it never changes training; each evaluation also writes ``policy.pt``.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from typing import TYPE_CHECKING, Any

import torch

from rlwb import checkpoint as ckpt
from rlwb import saved_run
from rlwb.agent import Agent, IterationAgent, PhaseReporter, StepAgent
from rlwb.config import class_path
from rlwb.engine import Engine, make_engine
from rlwb.errors import CheckpointError, ConfigError, RlwbError
from rlwb.evaluate import (
    evaluation_rng,
    load_policy,
    mean_std,
    policy_entry,
    resolve_device,
    run_evaluation,
)
from rlwb.logger import RunLogger
from rlwb.resume import Resume
from rlwb.stepping import Counters, StepLoop

if TYPE_CHECKING:
    from rlwb.train import TrainConfig

EVAL_SEED_OFFSET = 10_000  # default evaluation seed: seed + this (disjoint from training)


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a step from ``before`` to ``after`` crossed a multiple of ``every``."""
    return every > 0 and before // every < after // every


def new_run_dir(cfg: TrainConfig, agent_cls: type) -> pathlib.Path:
    prefix = cfg.experiment or agent_cls.__name__.lower()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = cfg.run_name or f"{prefix}-{cfg.task}-{cfg.seed}-{stamp}"
    return saved_run.unique_dir(pathlib.Path(cfg.run_dir), name)


class TrainingRun:
    """One training run's live objects (engines, agent, logger, counters)."""

    def __init__(
        self,
        agent_cls: type[Agent],
        agent_config: Any,
        cfg: TrainConfig,
        resume: Resume | None,
    ) -> None:
        self.agent_cls, self.agent_config = agent_cls, agent_config
        self.payload = resume.payload if resume else None
        self.device = resolve_device(cfg.device)
        ckpt.seed_everything(cfg.seed)
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
        self, agent_cls: type[Agent], agent_config: Any, cfg: TrainConfig, resume: Resume | None
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
        self.counters = Counters()
        self.history = resume.history if resume else []
        if resume is None:
            self.run_dir = new_run_dir(self.cfg, agent_cls)
        else:
            self.run_dir = resume.run_dir
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints = ckpt.CheckpointManager(
            self.run_dir / "checkpoints",
            self.cfg.keep_checkpoints,
            protect=resume.source if resume and not resume.branch else None,
        )
        self.rate_window = (time.perf_counter(), 0)  # time, env steps: steps/s for TensorBoard
        self.eval_result: tuple[float, float, list[float]] = (math.nan, math.nan, [])
        self.eval_step: int | None = None  # step of eval_result (None: not this session)
        obs = self._restore(self.payload) if self.payload else None
        self.loop: StepLoop | None = None  # the step of a StepAgent
        if isinstance(self.agent, StepAgent):
            self.loop = StepLoop(
                self.agent,
                self.engine,
                self.cfg.learning_starts,
                self.cfg.updates_per_step,
                cfg.seed,
                self.counters,
                self.action_generator,
                obs,  # None: a fresh start resets the engine
            )
        elif self.payload is None:
            self.engine.reset(seed=cfg.seed)
        saved_run.write_config(self.run_dir, self.config_dict())

    # ------------------------------------------------------------------ state
    @property
    def obs(self) -> torch.Tensor | None:
        """The training engine's current observations (None for an IterationAgent)."""
        return self.loop.obs if self.loop is not None else None

    @property
    def last_losses(self) -> dict[str, float]:
        """What the last ``update`` returned (logged under ``losses/``)."""
        return self.loop.last_losses if self.loop is not None else {}

    def config_dict(self) -> dict[str, Any]:
        return saved_run.run_config(
            self.agent_cls, self.agent_config, self.cfg, self.engine, self.step_scale,
            self.history,
        )  # fmt: skip

    def header(self) -> dict[str, Any]:
        """What rebuilds the agent and its evaluation (shared by checkpoints and policy.pt)."""
        return saved_run.header(
            self.agent_cls, self.agent_config, self.cfg, self.engine, self.counters.env_steps,
            self.step_scale,
        )  # fmt: skip

    def payload_now(self) -> dict[str, Any]:
        return saved_run.checkpoint_payload(
            self.header(),
            self.agent,
            self.engine,
            self.obs,
            {"global": ckpt.rng_state(), "actions": self.action_generator.get_state()},
            dataclasses.asdict(self.counters),
            self.eval_result,
            self.history,
        )

    def _restore(self, payload: dict[str, Any]) -> torch.Tensor | None:
        """Load the checkpoint's agent, engine, counters, RNG and last evaluation; returns
        its observations (None for an IterationAgent)."""
        try:
            self.agent.load_state_dict(payload["agent"])
            self.engine.load_state_dict(payload["engine"])
            self.counters = Counters(**dict(payload["counters"]))
            self.action_generator.set_state(payload["rng"]["actions"])
            ckpt.set_rng_state(payload["rng"]["global"])
            obs = payload.get("obs")
            mean, std, returns = payload.get("eval", [math.nan, math.nan, []])
            self.eval_result = (mean, std, list(returns))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint does not match this run: {exc}") from None
        dtype = self.engine.spec.observation_dtype  # float state vectors, uint8 images
        return obs.to(self.device, dtype) if obs is not None else None

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
        video_due = self.cfg.video and (final or crossed(before, step, self.cfg.video_every))
        if video_due:
            self._video(agent, logger, step)

    def save_policy(self) -> pathlib.Path:
        """``policy.pt``: the policy state and how to rebuild the agent (no replay, no
        optimizer), for ``rlwb eval``."""
        return saved_run.save_policy(self.run_dir, self.header(), self.agent)

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
