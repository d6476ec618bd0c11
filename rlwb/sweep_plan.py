"""What a sweep runs, checked before anything starts: the command line, grid and search space.

A sweep plan is plain data (saved as ``sweep.yaml`` in the sweep folder), so ``rlwb sweep
--resume DIR`` rebuilds the same sweep and a trial worker on another node receives it as is.
Every grid or space key and value is parsed by the experiment's own option parser (with
the options given to every trial) before Ray starts, so a typo is one line, not a failed
trial later.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any

from rlwb.config import load_yaml, parse_cli
from rlwb.errors import ConfigError

PLAN_FILE = "sweep.yaml"
METRIC = "eval/return_mean"  # what trials print at every evaluation, hence what they report
SCHEDULERS = ("fifo", "asha", "median", "pbt")
SEARCHES = ("grid", "random", "optuna")
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")


@dataclass
class SweepPlan:
    """Everything a sweep needs to run or resume."""

    experiment: str
    seeds: list[int]
    grid: dict[str, list[str]] = field(default_factory=dict)
    space: dict[str, str] = field(default_factory=dict)
    search: str = "grid"
    trials: int = 1
    metric: str = METRIC
    mode: str = "max"
    scheduler: str = "fifo"
    sweep_dir: str = "runs/sweeps"
    name: str = ""
    max_concurrent: int = 0
    cpus_per_trial: float = 0.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    max_failures: int = 10
    extra: list[str] = field(default_factory=list)
    budget: int = 0
    """Env steps of one run (the scheduler's time axis ends there)."""
    eval_every: int = 0
    """Env steps between evaluations (the unit of the schedulers' grace periods)."""

    @property
    def folder(self) -> pathlib.Path:
        return pathlib.Path(self.sweep_dir) / self.name

    @property
    def keys(self) -> list[str]:
        return list(self.grid) + list(self.space)

    def trial_cpus(self) -> float:
        """CPUs a trial reserves: ``--cpus-per-trial``, by default one per seed."""
        return self.cpus_per_trial or float(len(self.seeds))

    def save(self) -> None:
        from rlwb.config import dump_yaml

        dump_yaml(dataclasses.asdict(self), self.folder / PLAN_FILE)

    @classmethod
    def load(cls, folder: str | pathlib.Path) -> SweepPlan:
        path = pathlib.Path(folder) / PLAN_FILE
        if not path.is_file():
            raise ConfigError(f"no sweep at {folder} (no {PLAN_FILE}); start one with rlwb sweep")
        data = load_yaml(path)
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as every rlwb error
        raise ConfigError(f"rlwb sweep: {message}")


def _parser() -> _Parser:
    p = _Parser(prog="rlwb sweep", allow_abbrev=False, description=(
        "Seeds x settings of an experiment on Ray Tune; options after the sweep's own go to "
        "every trial as rlwb train takes them."))  # fmt: skip
    p.add_argument("experiment", nargs="?", help="experiment, as rlwb train takes it")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of every config")
    p.add_argument(
        "--grid",
        nargs="+",
        action="extend",
        default=[],
        help="KEY=V1,V2,...: every value of KEY (e.g. agent.gamma=0.98,0.99)",
    )
    p.add_argument(
        "--space",
        nargs="+",
        action="extend",
        default=[],
        help="KEY=DIST:ARGS, DIST one of loguniform:LO:HI, uniform:LO:HI, "
        "randint:LO:HI, choice:A,B,...",
    )
    p.add_argument(
        "--search",
        choices=SEARCHES,
        default=None,
        help="grid (default without --space), random or optuna (Tune's searcher)",
    )
    p.add_argument("--trials", type=int, default=1, help="sampled configurations (--space)")
    p.add_argument("--metric", default=METRIC, help="what configurations are ranked by")
    p.add_argument("--mode", choices=("max", "min"), default="max")
    p.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="fifo",
        help="fifo (run all), asha, median (early stopping) or pbt",
    )
    p.add_argument("--sweep-dir", default="runs/sweeps", help="folder that holds sweeps")
    p.add_argument("--name", default=None, help="sweep folder name (default: experiment-time)")
    p.add_argument("--max-concurrent", type=int, default=0, help="trials at once (0: as fit)")
    p.add_argument(
        "--cpus-per-trial",
        type=float,
        default=0.0,
        help="CPUs per trial, fractions allowed (default: one per seed)",
    )
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial")
    p.add_argument("--address", default=None, help="Ray cluster (HOST:PORT or ray://HOST:PORT)")
    p.add_argument(
        "--max-failures",
        type=int,
        default=10,
        help="restarts of a trial whose worker dies (-1: no limit)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="SWEEPDIR",
        help="continue a sweep: finished trials are kept",
    )
    return p  # fmt: skip


def parse_command(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own options and the options for every trial."""
    return _parser().parse_known_args(argv)


def config_class(module: Any) -> type:
    """The experiment's config: its dataclass with ``train`` and ``agent`` fields."""
    for value in vars(module).values():
        if dataclasses.is_dataclass(value) and isinstance(value, type):
            names = {f.name for f in dataclasses.fields(value)}
            if {"train", "agent"} <= names and value.__module__ == module.__name__:
                return value
    raise ConfigError(f"experiment {module.__name__} has no config dataclass (train, agent)")


def option_args(settings: dict[str, Any]) -> list[str]:
    """``{"agent.actor_lr": 1e-4}`` -> ``["--agent.actor-lr", "0.0001"]`` (a value with
    spaces is several tokens: a tuple field)."""
    args: list[str] = []
    for key, value in settings.items():
        args.append("--" + key.replace("_", "-"))
        args.extend(str(value).split())
    return args


def _check_key(key: str, what: str) -> None:
    section, _, name = key.partition(".")
    if section not in ("train", "agent") or not name:
        raise ConfigError(f"{what} key {key!r} must be train.FIELD or agent.FIELD")
    if key in ("train.seed", "train.run_dir", "train.run_name"):
        raise ConfigError(f"{what} key {key!r} is set by the sweep (use --seeds, --sweep-dir)")


def _number(text: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--space {key}: {text!r} is not a number") from None


def space_domain(key: str, text: str) -> Any:
    """A Tune search domain from ``loguniform:1e-5:1e-3`` and the like."""
    from ray import tune

    kind, _, rest = text.partition(":")
    if kind == "choice":
        values = [v for v in rest.split(",") if v]
        if not values:
            raise ConfigError(f"--space {key}: choice needs values (choice:A,B,...)")
        return tune.choice(values)
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            f"--space {key}: unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS)}"
        )
    parts = rest.split(":")
    if len(parts) != 2:
        raise ConfigError(f"--space {key}: write {kind}:LOW:HIGH, got {text!r}")
    low, high = (_number(p, key) for p in parts)
    if not low < high or (kind == "loguniform" and low <= 0):
        raise ConfigError(f"--space {key}: need 0 < LOW < HIGH for loguniform, LOW < HIGH else")
    if kind == "randint":
        return tune.randint(int(low), int(high) + 1)
    return (tune.loguniform if kind == "loguniform" else tune.uniform)(low, high)


def _split(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not value:
            raise ConfigError(f"{flag} {item!r}: write KEY=VALUE")
        _check_key(key, flag)
        if key in out:
            raise ConfigError(f"{flag} names {key} twice")
        out[key] = value
    return out


def _samples(plan: SweepPlan) -> list[dict[str, Any]]:
    """Settings that stand for every value a trial may get: the grid's product, the
    bounds and choices of the space."""
    grid = [[(k, v) for v in vs] for k, vs in plan.grid.items()]
    rows = [dict(row) for row in itertools.product(*grid)]
    for key, text in plan.space.items():
        kind, _, rest = text.partition(":")
        values = rest.split(",") if kind == "choice" else rest.split(":")
        rows = [{**row, key: v} for row in rows for v in values]
    return rows


def check_plan(plan: SweepPlan) -> None:
    """Every key and value as the experiment parses it, the search and scheduler settings
    that fit together; the env-step budget and evaluation cadence from the parsed config."""
    from rlwb.cli import load_experiment

    if not plan.seeds or len(set(plan.seeds)) != len(plan.seeds):
        raise ConfigError(f"--seeds must be distinct, got {plan.seeds}")
    if plan.metric != METRIC:
        raise ConfigError(f"--metric {plan.metric!r}: trials report {METRIC} only")
    if plan.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {plan.trials}")
    if plan.space and plan.search == "grid":
        raise ConfigError("--space needs --search random or optuna (--grid takes value lists)")
    if plan.search == "optuna" and (plan.grid or not plan.space):
        raise ConfigError("--search optuna searches a --space (write a grid as choice:A,B)")
    if plan.cpus_per_trial < 0 or plan.gpus_per_trial < 0 or plan.max_concurrent < 0:
        raise ConfigError("--cpus-per-trial, --gpus-per-trial, --max-concurrent must be >= 0")
    module = load_experiment(plan.experiment)
    cls = config_class(module)
    config = None
    for row in _samples(plan):
        config = parse_cli(cls, [*plan.extra, *option_args(row)], prog="rlwb sweep")
    assert config is not None
    if plan.scheduler == "pbt":
        if plan.grid or not plan.space:
            raise ConfigError("--scheduler pbt mutates --space keys; give --space, no --grid")
        mutable = tuple(getattr(type(config.agent), "mutable_on_resume", ()))
        for key in plan.space:
            if not key.startswith("agent.") or key.split(".", 1)[1] not in mutable:
                allowed = ", ".join(f"agent.{m}" for m in mutable) or "none"
                raise ConfigError(
                    f"--scheduler pbt cannot change {key} on resume; "
                    f"{type(config.agent).__name__} declares mutable: {allowed}"
                )
    train = config.train
    from rlwb.env_steps import action_repeat_of

    repeat = action_repeat_of(train.task_kwargs)
    plan.budget = int(train.total_env_steps or train.total_steps * repeat)
    plan.eval_every = int(train.eval_every * repeat) or plan.budget


def plan_from_args(opts: argparse.Namespace, extra: list[str]) -> SweepPlan:
    """A checked plan from the command line (nothing started yet)."""
    if not opts.experiment:
        raise ConfigError("rlwb sweep needs an EXPERIMENT (or --resume SWEEPDIR)")
    bad = [a for a in extra if a.startswith("--") and "." not in a.split("=", 1)[0]]
    if bad:
        raise ConfigError(f"rlwb sweep: unknown option {bad[0]} (trial options are --train.*, "
                          "--agent.*)")  # fmt: skip
    grid = {k: [x for x in v.split(",") if x] for k, v in _split(opts.grid, "--grid").items()}
    space = _split(opts.space, "--space")
    for key in set(grid) & set(space):
        raise ConfigError(f"{key} is in both --grid and --space")
    for key, text in space.items():
        space_domain(key, text)
    import time

    name = opts.name or f"{pathlib.Path(opts.experiment).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    plan = SweepPlan(
        experiment=opts.experiment, seeds=list(opts.seeds), grid=grid, space=space,
        search=opts.search or ("random" if space else "grid"), trials=opts.trials,
        metric=opts.metric, mode=opts.mode, scheduler=opts.scheduler,
        sweep_dir=str(pathlib.Path(opts.sweep_dir).resolve()), name=name,
        max_concurrent=opts.max_concurrent,
        cpus_per_trial=opts.cpus_per_trial, gpus_per_trial=opts.gpus_per_trial,
        address=opts.address, max_failures=opts.max_failures, extra=list(extra),
    )  # fmt: skip
    check_plan(plan)
    if not math.isfinite(plan.cpus_per_trial):
        raise ConfigError("--cpus-per-trial must be finite")
    return plan
