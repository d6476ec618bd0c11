"""Run output: TensorBoard events and console progress.

Tags follow CleanRL's conventions so curves compare across tools: ``charts/episodic_return``,
``charts/episodic_length``, ``eval/return_mean``, ``eval/return_std``, ``losses/*``,
``perf/steps_per_second``; hyperparameters through the HParams plugin; evaluation videos
as animated GIFs (``eval/video``, encoded here: no moviepy needed).

Console: on a terminal a live progress bar with ETA; otherwise (a file, a pipe, a
scheduler's log) one progress line every ``line_every`` seconds. A long phase inside one step
(an agent's catch-up updates, an evaluation) reports through :meth:`RunLogger.phase` and
shows up in the bar or the lines once it has lasted ``PHASE_SHOW_S``. Rates and ETAs are
measured from :meth:`RunLogger.restart_rate` on, so the fast random-action steps before
learning starts do not make the ETA of the slow steps after them look short.
"""

from __future__ import annotations

import io
import pathlib
import sys
import time
from collections import deque
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

REFRESH_S = 0.5  # console progress refresh period
PHASE_SHOW_S = 1.0  # a phase inside a step shows once it has lasted this long


class RunLogger:
    """Scalars to TensorBoard, a progress bar and notable lines to the console."""

    def __init__(
        self,
        log_dir: str | pathlib.Path,
        total_steps: int,
        start_step: int = 0,
        progress: bool = True,
        console: Console | None = None,
        line_every: float = 30.0,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = pathlib.Path(log_dir)
        # purge_step: a resumed run hides events the interrupted run wrote after its
        # checkpoint at step S. Everything at S itself (the evaluation there) was written
        # before the checkpoint, so it stays: purge from S + 1.
        self.writer = SummaryWriter(str(self.log_dir), purge_step=start_step + 1 or None)
        self.total_steps = total_steps
        self.console = console or Console(stderr=False)
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.last_eval: str = "-"
        self.steps_per_second = 0.0
        self._last_refresh = (time.perf_counter(), start_step)
        self._progress: Progress | None = None
        self._task = None
        self.line_every = line_every if progress and not self.console.is_terminal else 0.0
        self._line = (time.perf_counter(), start_step)  # last progress line: time, step
        self._step = start_step
        # the phase running inside the current step: what, (start time, done at start), done
        self._phase_what = ""
        self._phase_start = (0.0, 0)
        self._phase_done = -1
        self._phase_shown = False
        self._phase_refresh = 0.0
        if progress and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
                TextColumn("{task.fields[sps]:,.0f} steps/s"),
                TextColumn("return {task.fields[ret]}"),
                TextColumn("eval {task.fields[eval]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task(
                "train", total=total_steps, completed=start_step, sps=0.0, ret="-", eval="-"
            )
            self._progress.start()

    # ---------------------------------------------------------------- TensorBoard
    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, float(value), step)

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        for key, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            self.writer.add_scalar(key if "/" in key else f"{prefix}/{key}", number, step)

    def episodes(self, returns: list[float], lengths: list[int], step: int) -> None:
        """Finished training episodes at ``step`` (one point per episode, as CleanRL)."""
        for ret, length in zip(returns, lengths, strict=True):
            self.writer.add_scalar("charts/episodic_return", ret, step)
            self.writer.add_scalar("charts/episodic_length", length, step)
            self.recent_returns.append(ret)

    def hparams(self, hparams: dict[str, Any], metrics: tuple[str, ...]) -> None:
        """Hyperparameters for TensorBoard's HParams tab, linked to scalar ``metrics``."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        clean = {
            k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in hparams.items()
        }
        exp, ssi, sei = hparams_summary(clean, {m: 0.0 for m in metrics})
        file_writer = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            file_writer.add_summary(summary)

    def text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text, 0)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        """A matplotlib figure as an image (closed afterwards)."""
        self.writer.add_figure(tag, figure, step)

    def video(self, tag: str, frames: list[np.ndarray], step: int, fps: int) -> None:
        """Frames ``[H, W, 3]`` uint8 as an animated GIF image summary (what
        ``SummaryWriter.add_video`` writes, without its moviepy dependency)."""
        import imageio.v2 as imageio
        from tensorboard.compat.proto.summary_pb2 import Summary

        if not frames:
            return
        buffer = io.BytesIO()
        imageio.mimsave(buffer, frames, format="GIF", duration=1000 / max(fps, 1), loop=0)
        height, width = frames[0].shape[:2]
        image = Summary.Image(
            height=height, width=width, colorspace=3, encoded_image_string=buffer.getvalue()
        )
        summary = Summary(value=[Summary.Value(tag=tag, image=image)])
        self.writer._get_file_writer().add_summary(summary, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A uint8 RGB image ``[3, H, W]``."""
        self.writer.add_image(tag, image, step, dataformats="CHW")

    # ---------------------------------------------------------------- console
    def advance(self, step: int, force: bool = False) -> None:
        """Move the progress bar (at most every ``REFRESH_S`` seconds unless ``force``), or
        print a progress line every ``line_every`` seconds."""
        self._step, self._phase_what = step, ""  # the next phase call starts a new phase
        if self.line_every > 0:
            self._maybe_line(step)
        if self._progress is None:
            return
        now = time.perf_counter()
        elapsed = now - self._last_refresh[0]
        if not force and elapsed < REFRESH_S and not self._phase_shown:
            return
        if self._phase_shown:
            self._phase_shown = False
            self._progress.update(self._task, description="train")
        if step > self._last_refresh[1] and elapsed > 0:
            self.steps_per_second = (step - self._last_refresh[1]) / elapsed
        self._last_refresh = (now, step)
        self._progress.update(
            self._task,
            completed=step,
            sps=self.steps_per_second,
            ret=self._recent_return(),
            eval=self.last_eval,
        )

    def restart_rate(self, step: int) -> None:
        """Measure speed (and so the ETA) from ``step`` on: the steps before it ran at
        another pace (random actions before learning starts)."""
        now = time.perf_counter()
        self._line = self._last_refresh = (now, step)
        if self._progress is not None:
            self._progress.reset(
                self._task,
                completed=step,
                description="train",
                sps=self.steps_per_second,
                ret=self._recent_return(),
                eval=self.last_eval,
            )

    def phase(self, what: str, done: int, total: int, step: int) -> None:
        """``done`` of ``total`` units of a long phase inside the step that reaches ``step``
        (an agent's updates, evaluation steps). Called once per unit, thousands of times a
        second: it shows something only once the phase has lasted ``PHASE_SHOW_S``, in the
        bar every ``REFRESH_S``, as a line every ``line_every`` seconds."""
        now = time.perf_counter()
        if done <= self._phase_done or what != self._phase_what:  # a new phase begins
            self._phase_what, self._phase_start = what, (now, done)
        self._phase_done = done
        started, done_at_start = self._phase_start
        if now - started < PHASE_SHOW_S:
            return
        if self._progress is not None and now - self._phase_refresh >= REFRESH_S:
            self._phase_refresh = now
            self._phase_shown = True
            description = f"{what} {done:,}/{total:,}"
            self._progress.update(self._task, description=description, completed=step)
        if self.line_every > 0 and now - self._line[0] >= self.line_every:
            self._line = (now, step)
            rate = (done - done_at_start) / (now - started)
            self.print(f"{self._position(step)}  {phase_text(what, done, total, rate)}")

    def _position(self, step: int) -> str:
        percent = 100 * step / max(self.total_steps, 1)
        return f"step {step:,}/{self.total_steps:,} ({percent:.0f}%)"

    def _recent_return(self) -> str:
        recent = self.recent_returns
        return f"{sum(recent) / len(recent):.1f}" if recent else "-"

    def _maybe_line(self, step: int) -> None:
        now = time.perf_counter()
        elapsed = now - self._line[0]
        if elapsed < self.line_every:
            return
        sps = (step - self._line[1]) / elapsed
        self._line = (now, step)
        left = max(self.total_steps - step, 0)
        eta = _clock(left / sps) if sps > 0 else "-"
        self.print(
            f"{self._position(step)}  {sps:,.0f} steps/s  "
            f"return {self._recent_return()}  eval {self.last_eval}  ETA {eta}"
        )

    def print(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        if self._progress is not None:
            if self._phase_shown:
                self._progress.update(self._task, description="train")
            self._progress.stop()
            self._progress = None
        self.writer.close()
        sys.stdout.flush()


def phase_text(what: str, done: int, total: int, rate: float) -> str:
    """``updates 1,200/5,001  41.5/s  ETA 0:01:32``: a phase's progress line."""
    eta = _clock((total - done) / rate) if rate > 0 else "-"
    return f"{what} {done:,}/{total:,}  {rate:,.1f}/s  ETA {eta}"


class PhaseProgress:
    """Progress of one long phase outside a training run (``rlwb eval``): a live bar on a
    terminal, else a line every ``line_every`` seconds. Calling it is the
    :data:`rlwb.agent.PhaseReporter` protocol: cheap per unit; it never asks to stop (Ctrl-C
    stays Python's KeyboardInterrupt there)."""

    def __init__(self, line_every: float = 30.0) -> None:
        self.console = Console()
        self.line_every = line_every
        self._last = time.perf_counter()
        self._start: tuple[float, int] | None = None  # the first call: time, done
        self._bar: Progress | None = None
        self._task = None

    def __call__(self, what: str, done: int, total: int) -> bool:
        now = time.perf_counter()
        if self._start is None:
            self._start = (now, done)
        if self.console.is_terminal:
            if now - self._last >= REFRESH_S:
                self._last = now
                self._show_bar(what, done, total)
        elif self.line_every > 0 and now - self._last >= self.line_every:
            self._last = now
            rate = (done - self._start[1]) / max(now - self._start[0], 1e-9)
            self.console.print(phase_text(what, done, total, rate), highlight=False)
        return False

    def _show_bar(self, what: str, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._bar.add_task(what, total=total)
            self._bar.start()
        self._bar.update(self._task, description=what, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


OBSERVATION_TAG = "observations/frames"
FRAMES_SHOWN = 4  # members whose observation a run shows at its start


def log_observation_frames(logger: RunLogger, obs: Any, step: int = 0) -> bool:
    """Show what an agent sees: for image observations (uint8 ``[B, 3k, H, W]``, k stacked
    RGB frames) one image under ``observations/frames`` with a row per member (the first
    four) and its k frames side by side, oldest first. Returns whether there was anything
    to show (state vectors are not images)."""
    import torch

    if not isinstance(obs, torch.Tensor) or obs.dtype != torch.uint8 or obs.ndim != 4:
        return False
    shown, channels, height, width = obs[:FRAMES_SHOWN].shape
    if channels % 3:
        return False
    frames = obs[:shown].reshape(shown, channels // 3, 3, height, width)
    grid = frames.permute(2, 0, 3, 1, 4).reshape(3, shown * height, -1)
    logger.image(OBSERVATION_TAG, grid.cpu().numpy(), step)
    return True


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
