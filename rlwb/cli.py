"""The ``rlwb`` command: train, eval, export, list, bench, plot, sweep.

The first word picks the command; each command's options are parsed by tyro from a
dataclass (``rlwb train`` hands the rest of the line to the experiment's own tyro parser).
Every :class:`rlwb.errors.RlwbError` ends the command with exit code 2 and one line on
stderr; an interrupted run exits with 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM). ``python -m rlwb.experiments.X`` goes through :func:`rlwb.command.run_as_command` too.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering without a display

import ast  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import pathlib  # noqa: E402
import pkgutil  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Annotated  # noqa: E402

import tyro  # noqa: E402

from rlwb.command import (  # noqa: E402, F401 - exit codes and run_as_command, used from here too
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    exit_code,
    run_as_command,
)
from rlwb.config import TaskKwargs, parse_cli  # noqa: E402
from rlwb.errors import ConfigError, RlwbError  # noqa: E402
from rlwb.paths import os_error_line  # noqa: E402


# ---------------------------------------------------------------------- discovery
def _first_doc_line(path: str | None) -> str:
    """First line of a module's docstring, read without importing it."""
    if not path or not path.endswith(".py"):
        return ""
    try:
        doc = ast.get_docstring(ast.parse(pathlib.Path(path).read_text()))
    except (OSError, SyntaxError):
        return ""
    return doc.strip().splitlines()[0] if doc else ""


def modules_of(package: str) -> dict[str, str]:
    """Public modules of a package with the first line of their docstrings."""
    pkg = importlib.import_module(package)
    found = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        spec = importlib.util.find_spec(f"{package}.{info.name}")
        found[info.name] = _first_doc_line(spec.origin if spec else None)
    return dict(sorted(found.items()))


def load_experiment(name: str) -> ModuleType:
    """An experiment: a module under rlwb.experiments, a dotted module path or a .py file."""
    if name.endswith(".py"):
        path = pathlib.Path(name)
        if not path.is_file():
            raise ConfigError(f"no experiment file {name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        module.__rlwb_experiment__ = name  # how `rlwb train` finds it again (resume hint)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return _check_main(module, name)
    module_name = name if "." in name else f"rlwb.experiments.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the experiment exists but imports something missing: a real error
        available = ", ".join(modules_of("rlwb.experiments")) or "none yet"
        raise ConfigError(f"unknown experiment {name!r}; available: {available}") from None
    return _check_main(module, name)


def _check_main(module: ModuleType, name: str) -> ModuleType:
    if not callable(getattr(module, "main", None)):
        raise ConfigError(f"experiment {name!r} has no main(argv) function")
    return module


# ---------------------------------------------------------------------- commands
def cmd_train(args: list[str]) -> int:
    """Train an experiment: rlwb train EXPERIMENT [overrides] (see rlwb train EXPERIMENT -h)."""
    if not args or args[0] in ("-h", "--help"):
        print("usage: rlwb train EXPERIMENT [--train.FIELD VALUE ...] [--agent.FIELD VALUE ...]")
        print("       [--resume CHECKPOINT]\n")
        print("EXPERIMENT is a module of rlwb.experiments, a dotted module path or a .py file.")
        print("rlwb train EXPERIMENT --help lists its options.\n\nexperiments:")
        for name, doc in modules_of("rlwb.experiments").items():
            print(f"  {name:<24} {doc}")
        return 0 if args else EXIT_ERROR
    name, rest = args[0], args[1:]
    module = load_experiment(name)
    sys.argv[0] = f"rlwb train {name}"  # tyro's usage line
    result = module.main(rest)
    return exit_code(result)


@dataclass
class EvalArgs:
    """Evaluate a saved policy: mean ± std return over N deterministic episodes."""

    checkpoint: tyro.conf.Positional[str]
    """A run folder (its latest checkpoint, else its policy.pt), a checkpoint or a policy.pt."""
    episodes: int | None = None
    """Episodes (default: the run's eval_episodes, which reproduces its final evaluation)."""
    video: str | None = None
    """Also write one episode to this .mp4 file."""
    backend: str | None = None
    """Engine backend (default: the run's)."""
    device: str | None = None
    """Torch device (default: the run's if available)."""
    seed: int | None = None
    """Evaluation seed (default: the run's eval_seed)."""
    progress_every: float = 30.0
    """Seconds between progress lines when the output is not a terminal."""
    task_kwargs: TaskKwargs = field(default_factory=dict)
    """Change task settings for this evaluation: KEY VALUE pairs over the run's own
    (e.g. wind_speed 4, max_episode_steps 500); the changes are printed first."""


def cmd_eval(args: list[str]) -> int:
    from rlwb.evaluate import evaluate, format_result
    from rlwb.video import VideoError

    opts = parse_cli(EvalArgs, args, prog="rlwb eval")
    try:
        mean, std, returns = evaluate(
            opts.checkpoint, opts.episodes, opts.video, opts.backend, opts.device, opts.seed,
            progress_every=opts.progress_every, task_kwargs=opts.task_kwargs,
        )  # fmt: skip
    except VideoError as exc:
        if exc.result is None:
            raise
        mean, std, returns = exc.result  # the return first, then why there is no video
        print(format_result(mean, std, len(returns)), flush=True)
        print(f"rlwb: error: no video: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(format_result(mean, std, len(returns)))
    if opts.video:
        print(f"video: {opts.video}")
    return 0


@dataclass
class ExportArgs:
    """Export a saved policy network to ONNX (.onnx) or TorchScript (.pt), checked against
    torch on the same observations."""

    checkpoint: tyro.conf.Positional[str]
    """A run folder (its latest checkpoint, else its policy.pt), a checkpoint or a policy.pt."""
    output: Annotated[str, tyro.conf.arg(aliases=("-o",))] = "policy.onnx"
    """File to write: .onnx (ONNX) or .pt (TorchScript)."""


def cmd_export(args: list[str]) -> int:
    from rlwb.export import export_policy

    opts = parse_cli(ExportArgs, args, prog="rlwb export")
    print("\n".join(export_policy(opts.checkpoint, opts.output).lines()))
    return 0


@dataclass
class ListArgs:
    """List tasks (with their backends), backends (and whether they work here), agents and
    experiments."""


def agent_classes() -> dict[str, str]:
    """The agents ``rlwb.agents`` exports (not their configs) with their docstrings' first lines."""
    agents = importlib.import_module("rlwb.agents")
    found = {}
    for name in agents.__all__:
        cls = getattr(agents, name)
        if not name.endswith("Config"):
            found[name] = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    return dict(sorted(found.items()))


def cmd_list(args: list[str]) -> int:
    parse_cli(ListArgs, args, prog="rlwb list")
    from rlwb import tasks
    from rlwb.engine import BACKENDS, backend_status

    print("backends:")
    for name in BACKENDS:
        ok, why = backend_status(name)
        print(f"  {name:<8} {'available' if ok else 'unavailable: ' + why}")
    print("\ntasks (native backends in order of preference; gym = Gymnasium oracle):")
    for task_id, entry in sorted(tasks.all_tasks().items()):
        backends = list(entry.backends) + (["gym"] if entry.gym_id else [])
        print(f"  {task_id:<30} {','.join(backends):<16} {entry.description}")
    print("  (any other Gymnasium id runs on the gym backend)")
    print("  (EnvPool's Atari ids, Pong-v5, Frostbite-v5, ..., run on the envpool backend)")
    experiments = modules_of("rlwb.experiments")
    for title, found in (("agents", agent_classes()), ("experiments", experiments)):
        print(f"\n{title}:")
        for name, doc in found.items():
            print(f"  {name:<24} {doc}")
        if not found:
            print("  (none yet)")
    return 0


def cmd_bench(args: list[str]) -> int:
    """Engine and agent speed benchmarks (rlwb.bench)."""
    try:
        bench = importlib.import_module("rlwb.bench")
    except ModuleNotFoundError as exc:
        if exc.name != "rlwb.bench":
            raise
        raise RlwbError(
            "rlwb bench is not available in this install (no rlwb.bench module)"
        ) from None
    sys.argv[0] = "rlwb bench"
    code = bench.main(args)
    return int(code) if isinstance(code, int) else 0


@dataclass
class PlotArgs:
    """Learning curves of runs (mean and bootstrap 95% band over seeds, grouped by
    configuration, drawn up to the step every seed reached), read from their TensorBoard
    events."""

    runs: tyro.conf.Positional[list[str]]
    """Run folders, or folders that contain runs."""
    output: Annotated[str, tyro.conf.arg(aliases=("-o",))] = "curves.png"
    """Image file to write."""
    tag: str = "eval/return_mean"
    """Scalar tag to plot (e.g. charts/episodic_return)."""


def cmd_plot(args: list[str]) -> int:
    from rlwb.plot import plot_runs

    opts = parse_cli(PlotArgs, args, prog="rlwb plot")
    if not opts.runs:
        raise ConfigError("rlwb plot needs at least one run folder (see rlwb plot --help)")
    for label, seeds, runs, end in plot_runs(opts.runs, opts.output, opts.tag):
        extra = f" in {runs} runs" if runs != seeds else ""
        print(f"{label}: {seeds} seed{'s' if seeds != 1 else ''}{extra}, up to step {end:,}")
    print(f"wrote {opts.output}")
    return 0


def cmd_sweep(args: list[str]) -> int:
    """Seeds x settings on Ray Tune (rlwb.sweep)."""
    from rlwb.sweep import main as sweep_main

    return sweep_main(args)


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (cmd_train, "train an experiment (rlwb train ddpg_pendulum)"),
    "eval": (cmd_eval, "evaluate a saved policy: mean ± std return"),
    "export": (cmd_export, "a policy network as ONNX or TorchScript"),
    "list": (cmd_list, "tasks, backends, agents, experiments"),
    "bench": (cmd_bench, "speed benchmarks"),
    "plot": (cmd_plot, "learning curves of runs with confidence bands"),
    "sweep": (cmd_sweep, "seeds x settings on Ray Tune, resumable (rlwb sweep --help)"),
}


def usage() -> str:
    lines = ["usage: rlwb COMMAND [options]   (rlwb COMMAND --help for a command's options)", ""]
    lines += [f"  {name:<6} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else EXIT_ERROR
    if args[0] in ("-V", "--version"):
        import rlwb

        print(f"rlwb {rlwb.__version__}")
        return 0
    command = COMMANDS.get(args[0])
    try:
        if command is None:
            raise ConfigError(f"unknown command {args[0]!r}; choose one of: {', '.join(COMMANDS)}")
        return command[0](args[1:])
    except RlwbError as exc:
        print(f"rlwb: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # an unwritable run folder, plot or video path, a full disk
        if exc.filename is None:
            raise
        print(f"rlwb: error: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rlwb: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
