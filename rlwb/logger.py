"""Run output: TensorBoard events and console progress.

Tags follow CleanRL's conventions so curves compare across tools: ``charts/episodic_return``,
``charts/episodic_length``, ``eval/return_mean``, ``eval/return_std``, ``losses/*``,
``perf/steps_per_second``; hyperparameters through the HParams plugin; evaluation videos
as animated GIFs (``eval/video``, encoded here: no moviepy needed).

Console: on a terminal a live progress bar with ETA; otherwise (a file, a pipe, a
scheduler's log) one progress line every ``line_every`` seconds.
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

    # ---------------------------------------------------------------- console
    def advance(self, step: int, force: bool = False) -> None:
        """Move the progress bar (at most every ``REFRESH_S`` seconds unless ``force``), or
        print a progress line every ``line_every`` seconds."""
        if self.line_every > 0:
            self._maybe_line(step)
        if self._progress is None:
            return
        now = time.perf_counter()
        elapsed = now - self._last_refresh[0]
        if not force and elapsed < REFRESH_S:
            return
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
        percent = 100 * step / max(self.total_steps, 1)
        self.print(
            f"step {step:,}/{self.total_steps:,} ({percent:.0f}%)  {sps:,.0f} steps/s  "
            f"return {self._recent_return()}  eval {self.last_eval}  ETA {eta}"
        )

    def print(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.writer.close()
        sys.stdout.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
