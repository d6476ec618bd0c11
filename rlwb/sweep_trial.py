"""One sweep trial: one configuration, all its seeds, each an ordinary ``rlwb train`` run.

A trial is a configuration, not a (configuration, seed) pair, so that Tune's searchers and
schedulers see what a result in RL is: a configuration's mean over seeds. The trial starts
every seed as its own ``rlwb train`` process (the same command a user would type, so each
run folder is exactly what ``rlwb train`` writes and ``rlwb eval`` / ``rlwb plot`` /
TensorBoard read), reads each evaluation from their output, and reports to Tune, at every
env step that all seeds have evaluated, the seed mean and its 95% bootstrap interval. ASHA
and the median rule therefore compare configurations on that mean at equal env steps.

Preemption: each report carries a Tune checkpoint naming the seeds' run folders; the run
folders hold rlwb's own checkpoints. A trial restarted after its worker died (or after
``rlwb sweep --resume``) resumes every unfinished seed from its latest checkpoint with
``--resume`` (bit-exact), starts a seed that wrote none from scratch (equally exact), and
skips finished seeds. Seed processes die with the worker (Linux parent-death signal), so a
lost worker never leaves a second writer in a run folder.

Population-based training: when Tune hands the trial another trial's checkpoint, each seed
continues from a copy of the donor seed's latest rlwb checkpoint in a new run folder, with
``--resume`` and the mutated settings; the runner accepts only the fields the agent config
declares ``mutable_on_resume``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from rlwb import checkpoint as ckpt
from rlwb.sweep_plan import SweepPlan, option_args

STATE_FILE = "trial.json"
POLL_SECONDS = 0.5
_EVAL_LINE = re.compile(r"step ([\d,]+): eval return (\S+) ±")
_PR_SET_PDEATHSIG = 1


def bootstrap_interval(values: list[float], samples: int = 1000) -> tuple[float, float]:
    """95% bootstrap interval of the mean of ``values`` (the value itself for one seed)."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    rng = np.random.default_rng(0)
    means = rng.choice(data, size=(samples, len(data)), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def trial_folder_name(settings: dict[str, Any], trial_id: str | None) -> str:
    """``gamma=0.98,tau=0.01`` from a grid trial's settings (the same folder again after a
    restart); a sampled trial is named by Tune's trial id (its values may repeat, and PBT
    changes them; ``trial.json`` holds them)."""
    if trial_id:
        return f"trial-{trial_id}"
    parts = [f"{k.split('.', 1)[1]}={_short(v)}" for k, v in settings.items()]
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", ",".join(parts) or "default")[:120]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value).replace(" ", "_")


def _die_with_parent() -> None:
    """In a seed process: SIGKILL when the trial worker dies (Linux), so a restarted trial
    is the only writer of the run folder."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _write_json(path: pathlib.Path, data: dict[str, Any]) -> None:
    ckpt.atomic_write_bytes(path, lambda f: f.write(json.dumps(data, indent=1).encode()))


class SeedRun:
    """One seed's ``rlwb train`` process and the evaluations it printed."""

    def __init__(self, seed: int, run_dir: pathlib.Path, done: bool) -> None:
        self.seed, self.run_dir, self.done = seed, run_dir, done
        self.evals: dict[int, float] = {}
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, command: list[str], env: dict[str, str], log: pathlib.Path) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, args=(log,), daemon=True)
        self._reader.start()

    def _read(self, log: pathlib.Path) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(log, "a") as out:
            for line in self.process.stdout:
                out.write(line)
                out.flush()
                match = _EVAL_LINE.search(line)
                if match:
                    self.evals[int(match.group(1).replace(",", ""))] = float(match.group(2))

    def poll(self) -> int | None:
        """None while running, else the exit code (after its output is read)."""
        if self.process is None:
            return 0
        code = self.process.poll()
        if code is not None and self._reader is not None:
            self._reader.join()
        return code

    def stop(self) -> None:
        """SIGTERM (the run checkpoints and exits), then SIGKILL after a grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def read_evals(run_dir: pathlib.Path, tag: str) -> dict[int, float]:
    """Evaluations a run logged to TensorBoard: ``{env step: value}``."""
    from rlwb.plot import read_scalars

    if not any(run_dir.glob("events.out.tfevents.*")):
        return {}
    steps, values = read_scalars(run_dir, tag)
    return {int(s): float(v) for s, v in zip(steps, values, strict=True)}


def _seed_command(
    plan: SweepPlan, settings: dict[str, Any], seed: int, run: pathlib.Path, threads: int | None
) -> list[str]:
    command = [sys.executable, "-m", "rlwb.cli", "train", plan.experiment, *plan.extra]
    command += option_args(settings)
    command += ["--train.seed", str(seed), "--train.run-dir", str(run.parent)]
    command += ["--train.run-name", run.name]
    if threads is not None:
        command += ["--agent.torch-threads", str(threads)]
    saved = ckpt.CheckpointManager(run / "checkpoints").existing()
    if saved:  # the newest complete file (a kill may have come before its pointer)
        command += ["--resume", str(saved[-1])]
    elif run.exists():  # killed before its first checkpoint: start again, as exactly
        shutil.rmtree(run)
    return command


def _torch_threads(plan: SweepPlan) -> int | None:
    """Each seed's share of the trial's CPUs, for agents that set their torch threads
    (None: the agent has no such field, or the user set it)."""
    if any(a.startswith(("--agent.torch-threads", "--agent.torch_threads")) for a in plan.extra):
        return None
    from rlwb.cli import load_experiment
    from rlwb.sweep_plan import config_class

    config = config_class(load_experiment(plan.experiment))()
    if not hasattr(config.agent, "torch_threads"):
        return None
    return max(1, int(plan.trial_cpus() // len(plan.seeds)))


def _pbt_branch(state: dict[str, Any], donor: dict[str, Any], folder: pathlib.Path) -> int:
    """Continue each seed from a copy of the donor seed's latest checkpoint in a new run
    folder of this trial (the donor's folders stay as they are); the step it continues at."""
    generation = int(state.get("generation", 0)) + 1
    steps = []
    for seed, info in donor["seeds"].items():
        source = pathlib.Path(info["run"])
        latest = ckpt.CheckpointManager(source / "checkpoints").latest()
        if latest is None:
            continue
        run = folder / f"seed-{seed}-pbt{generation}"
        if run.exists():
            shutil.rmtree(run)
        (run / "checkpoints").mkdir(parents=True)
        shutil.copy2(latest, run / "checkpoints" / latest.name)
        (run / "checkpoints" / ckpt.LATEST).write_text(f"{latest.name}\n")
        for events in [*source.glob("events.out.tfevents.*"), source / "config.yaml"]:
            if events.is_file():  # a run folder from the start (the resume rewrites config)
                shutil.copy2(events, run / events.name)
        state["seeds"][seed] = {"run": str(run), "done": False}
        steps.append(ckpt.step_of(latest) or 0)
    state["generation"] = generation
    return min(steps, default=0)


def run_trial(config: dict[str, Any], plan: dict[str, Any]) -> None:
    """Tune's function trainable: run the configuration ``config`` over the plan's seeds."""
    import ray
    from ray import tune

    sweep = SweepPlan(**plan)
    settings = {k: config[k] for k in sweep.keys if k in config}
    context = tune.get_context()
    sampled = sweep.search != "grid"
    folder = sweep.folder / trial_folder_name(settings, context.get_trial_id() if sampled else None)
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / STATE_FILE
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    state.setdefault("settings", settings)
    state.setdefault("seeds", {})
    for seed in sweep.seeds:
        state["seeds"].setdefault(str(seed), {"run": str(folder / f"seed-{seed}"), "done": False})
    reported = -1
    given = tune.get_checkpoint()
    if given is not None:
        with given.as_directory() as d:
            donor = json.loads((pathlib.Path(d) / STATE_FILE).read_text())
        if donor.get("folder") != str(folder):  # PBT: continue from another trial
            reported = _pbt_branch(state, donor, folder)
            state["settings"] = settings
        else:
            reported = int(donor.get("reported", -1))
    state.update(
        folder=str(folder), worker_pid=os.getpid(),
        node=ray.get_runtime_context().get_node_id(), started=time.time(),
    )  # fmt: skip
    _write_json(state_path, state)

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    threads = _torch_threads(sweep)
    share = str(threads or max(1, int(sweep.trial_cpus() // len(sweep.seeds))))
    env.update(OMP_NUM_THREADS=share, MKL_NUM_THREADS=share)
    with contextlib.suppress(Exception):  # Ray inside a run (Deep GA) joins this cluster
        env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    runs: list[SeedRun] = []
    for seed in sweep.seeds:
        info = state["seeds"][str(seed)]
        run = SeedRun(seed, pathlib.Path(info["run"]), bool(info["done"]))
        run.evals = read_evals(run.run_dir, sweep.metric)  # what it logged before a restart
        if not run.done:
            command = _seed_command(sweep, settings, seed, run.run_dir, threads)
            run.start(command, env, folder / f"seed-{seed}.log")
        runs.append(run)
    try:
        _report_until_done(runs, state, state_path, reported, sweep)
    finally:
        for run in runs:
            run.stop()


def _report_until_done(
    runs: list[SeedRun], state: dict[str, Any], state_path: pathlib.Path, reported: int,
    sweep: SweepPlan,
) -> None:  # fmt: skip
    from ray import tune

    while True:
        codes = [run.poll() for run in runs]
        for run, code in zip(runs, codes, strict=True):
            if code not in (None, 0):
                raise RuntimeError(f"seed {run.seed} exited with code {code}; see its log")
            if code == 0 and not run.done:
                run.done = True
                run.evals = read_evals(run.run_dir, sweep.metric) or run.evals
                state["seeds"][str(run.seed)]["done"] = True
                _write_json(state_path, state)
        common = set.intersection(*(set(run.evals) for run in runs))
        if not all(run.done for run in runs):  # the last step once all exited: Tune stops
            common = {s for s in common if s < sweep.budget}  # a trial that reaches max_t
        for step in sorted(s for s in common if s > reported):
            values = [run.evals[step] for run in runs]
            low, high = bootstrap_interval(values)
            metrics = {
                sweep.metric: float(np.mean(values)), f"{sweep.metric}_low": low,
                f"{sweep.metric}_high": high, "env_steps": step, "seeds": len(values),
            }  # fmt: skip
            reported = step
            state["reported"] = step
            _write_json(state_path, state)
            with tempfile.TemporaryDirectory() as tmp:
                _write_json(pathlib.Path(tmp) / STATE_FILE, state)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        if all(run.done for run in runs):
            return
        time.sleep(POLL_SECONDS)
