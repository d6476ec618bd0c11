"""``rlwb sweep``: seeds x settings of an experiment on Ray Tune, local or on a cluster.

::

    rlwb sweep ddpg_pendulum --seeds 0 1 2 --grid agent.gamma=0.98,0.99 --name pend
    rlwb sweep ddpg_mujoco --search optuna --trials 40 --seeds 0 1 --scheduler asha \\
        --space agent.actor_lr=loguniform:1e-5:1e-3
    rlwb sweep --resume runs/sweeps/pend

Seeds are a dimension of their own: one Tune trial is one configuration, and it runs all
its seeds (each an ordinary ``rlwb train`` run folder, as parallel processes sharing the
trial's CPUs) and reports the seed mean with its 95% bootstrap interval at every env step
that all seeds evaluated (:mod:`rlwb.sweep_trial`). Searchers (grid, random, Optuna) and
schedulers (ASHA and the median rule on the env-step axis, PBT) thus see configurations,
never one lucky seed. The alternative, a trial per (configuration, seed), would need a
scheduler that groups trials and cannot stop or mutate one configuration's seeds together;
Tune has none.

Preemption: run folders keep rlwb's exact checkpoints, Tune's experiment state sits in
``<sweep>/tune``. A trial whose worker dies is restarted by Tune (``--max-failures``) and
resumes its seeds bit-exactly; ``rlwb sweep --resume`` after the driver died restores
Tune's state (Optuna's included), keeps finished trials and finishes the rest. On a
cluster, the sweep folder must be on storage every node sees (NFS on a SLURM allocation).
Tune's own result loggers are off, so the only TensorBoard events under the sweep folder
are the runs' own (``rlwb plot SWEEPDIR`` draws one curve per configuration).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
from typing import Any

from rlwb.errors import ConfigError
from rlwb.sweep_plan import PLAN_FILE, SweepPlan, parse_command, plan_from_args, space_domain
from rlwb.sweep_summary import write_summary

TUNE_FOLDER = "tune"
# Tune writes experiment state every few seconds (a killed driver loses little), and no
# TensorBoard files of its own: the runs' events are the sweep's curves.
_TUNE_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "2",
             "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
             "RAY_AIR_NEW_OUTPUT": "0", "RAY_DEDUP_LOGS": "0"}  # fmt: skip


def _scheduler(plan: SweepPlan) -> Any:
    from ray.tune import schedulers

    grace = max(plan.eval_every, plan.budget // 4)
    if plan.scheduler == "asha":
        return schedulers.ASHAScheduler(
            time_attr="env_steps", max_t=plan.budget, grace_period=min(grace, plan.budget)
        )
    if plan.scheduler == "median":
        return schedulers.MedianStoppingRule(
            time_attr="env_steps", grace_period=grace, min_samples_required=2
        )
    if plan.scheduler == "pbt":
        return schedulers.PopulationBasedTraining(
            time_attr="env_steps", perturbation_interval=grace,
            hyperparam_mutations={k: space_domain(k, v) for k, v in plan.space.items()},
        )  # fmt: skip
    return None


def _tuner(plan: SweepPlan) -> Any:
    from ray import tune

    trainable = _trainable(plan)
    space: dict[str, Any] = {k: tune.grid_search(v) for k, v in plan.grid.items()}
    space.update({k: space_domain(k, v) for k, v in plan.space.items()})
    search = None
    if plan.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search = OptunaSearch()
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=plan.metric,
            mode=plan.mode,
            search_alg=search,
            scheduler=_scheduler(plan),
            num_samples=1 if plan.search == "grid" else plan.trials,
            max_concurrent_trials=plan.max_concurrent or None,
        ),  # fmt: skip
        run_config=_run_config(plan),
    )


def _trainable(plan: SweepPlan) -> Any:
    from ray import tune

    from rlwb.sweep_trial import run_trial

    resources = {"cpu": plan.trial_cpus(), "gpu": plan.gpus_per_trial}
    return tune.with_resources(
        tune.with_parameters(run_trial, plan=dataclasses.asdict(plan)), resources
    )


def _run_config(plan: SweepPlan) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return tune.RunConfig(
        callbacks=[JsonLoggerCallback(), CSVLoggerCallback()],  # no TensorBoard files
        name=TUNE_FOLDER,
        storage_path=str(plan.folder.resolve()),
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        # PBT copies from any reported step of another trial: keep them all (small files)
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None if plan.scheduler == "pbt" else 2),
        verbose=0,
    )


def _start_ray(plan: SweepPlan) -> None:
    import ray

    from rlwb.agents.deep_ga.ray_shards import init_ray

    if ray.is_initialized():
        return
    # "local": a new Ray on this machine, never a cluster someone else started here
    address = plan.address or os.environ.get("RAY_ADDRESS") or "local"
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    init_ray(ray, address=address, **options)


def run_sweep(plan: SweepPlan, resume: bool = False) -> int:
    """Run (or continue) ``plan``; write the summary. The exit code: 0 when every trial
    finished, 1 when some failed, 130 when interrupted (continue with ``--resume``)."""
    for key, value in _TUNE_ENV.items():
        os.environ.setdefault(key, value)
    from ray import tune

    _start_ray(plan)
    tune_path = plan.folder.resolve() / TUNE_FOLDER
    if resume and tune.Tuner.can_restore(str(tune_path)):
        tuner = tune.Tuner.restore(
            str(tune_path), _trainable(plan), resume_unfinished=True, resume_errored=True
        )
    else:  # a new sweep, or one killed before Tune saved anything: trial folders resume
        tuner = _tuner(plan)
    print(f"sweep: {plan.folder}  ({plan.experiment}, seeds {plan.seeds})", flush=True)
    results = tuner.fit()
    rows = write_summary(plan)
    for rank, row in enumerate(rows, 1):
        mean, low, high = row.final
        print(f"{rank}. {row.folder}: final {mean:.2f} [{low:.2f}, {high:.2f}] "
              f"({row.seeds_finished}/{row.seeds} seeds, {row.env_steps:,} env steps)")  # fmt: skip
    print(f"summary: {plan.folder / 'summary.md'}")
    print(f"curves:  rlwb plot {plan.folder}")
    unfinished = sum(1 for r in rows if r.seeds_finished < r.seeds)
    if results.errors or (unfinished and plan.scheduler in ("fifo", "pbt")):
        print(f"{unfinished} configurations unfinished; continue with: rlwb sweep --resume "
              f"{plan.folder}", file=sys.stderr)  # fmt: skip
        return 1
    if unfinished:
        print(f"{unfinished} configurations stopped early by {plan.scheduler}")
    return 0


def main(argv: list[str]) -> int:
    """``rlwb sweep`` on the command line ``argv`` (after the command word)."""
    if argv and argv[0] in ("-h", "--help"):
        from rlwb.sweep_plan import _parser

        _parser().print_help()
        return 0
    opts, extra = parse_command(argv)
    if opts.resume:
        if opts.experiment or extra:
            raise ConfigError("rlwb sweep --resume SWEEPDIR takes no other settings")
        plan = SweepPlan.load(opts.resume)
        folder = pathlib.Path(opts.resume)
        plan.sweep_dir, plan.name = str(folder.resolve().parent), folder.name  # moved: fine
        return run_sweep(plan, resume=True)
    plan = plan_from_args(opts, extra)
    if (plan.folder / PLAN_FILE).exists():
        raise ConfigError(
            f"sweep {plan.folder} exists; continue it with: rlwb sweep --resume {plan.folder}"
        )
    plan.folder.mkdir(parents=True, exist_ok=True)
    plan.save()
    return run_sweep(plan)
