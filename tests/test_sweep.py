"""``rlwb sweep`` on a two-node Ray cluster made on this machine (a head and a worker node,
each a ``ray start --block`` process group of this test, stopped at the end): a grid of
2 settings x 2 seeds whose runs equal ``rlwb train``'s, trials on both nodes, the summary's
ranking; a trial worker and then the driver killed, finished by ``--resume`` equal to an
uninterrupted run. Bad grid and space settings fail in one line before Ray starts."""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from rlwb import checkpoint as ckpt
from rlwb.ray_nodes import LOCAL_ENV, local_cluster
from rlwb.sweep_check import runs_differ
from rlwb.sweep_trial import read_evals

pytest.importorskip("ray.tune")

TINY = ["--train.total-steps", "300", "--train.learning-starts", "100", "--train.eval-every",
        "100", "--train.eval-episodes", "2", "--train.eval-horizon", "50",
        "--train.checkpoint-every", "100", "--train.log-every", "100"]  # fmt: skip
NODE_CPUS = 2


@pytest.fixture(scope="module")
def cluster() -> Any:
    """``HOST:PORT`` of a head node plus one worker node, both on this machine."""
    with local_cluster(nodes=2, cpus_per_node=NODE_CPUS) as address:
        yield address


def _sweep(*args: str, wait: bool = True) -> Any:
    command = [sys.executable, "-m", "rlwb.cli", "sweep", *args]
    env = dict(os.environ, **LOCAL_ENV)
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip


def _train(argv: list[str]) -> Any:
    from rlwb.experiments import ddpg_pendulum

    return ddpg_pendulum.main([*argv, "--train.progress-every", "0"])


def test_bad_grid_and_space_settings_are_one_line_before_ray_starts(tmp_path, capsys) -> None:
    from rlwb.cli import main

    cases = {
        ("--grid", "agent.gama=0.9,0.99"): "gama",
        ("--grid", "agent.gamma=abc"): "abc",
        ("--grid", "seed=1"): "train.FIELD or agent.FIELD",
        ("--search", "random", "--space", "agent.actor_lr=lognormal:1:2"): "lognormal",
        ("--search", "random", "--space", "agent.actor_lr=loguniform:0:1"): "0 < LOW",
        ("--scheduler", "pbt", "--space", "agent.gamma=uniform:0.9:0.99"): "agent.actor_lr",
        ("--train.total-stepz", "5"): "total-stepz",
    }
    for args, word in cases.items():
        code = main(["sweep", "ddpg_pendulum", "--sweep-dir", str(tmp_path), *args])
        err = capsys.readouterr().err.strip()
        assert code == 2, args
        assert len(err.splitlines()) == 1 and word in err, (args, err)
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_grid_of_seeds_equals_rlwb_train_on_two_nodes_and_is_ranked(cluster, tmp_path) -> None:
    out = _sweep("ddpg_pendulum", "--seeds", "0", "1", "--grid", "agent.gamma=0.5,0.99",
                 "--sweep-dir", str(tmp_path), "--name", "pend", "--address", cluster,
                 "--cpus-per-trial", str(NODE_CPUS), *TINY)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    sweep = tmp_path / "pend"
    states = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/trial.json"))]
    assert len(states) == 2
    assert len({s["node"] for s in states}) == 2  # a trial needs a whole node: one on each
    means = {}
    for state in states:
        gamma = state["settings"]["agent.gamma"]
        finals = []
        for seed, info in state["seeds"].items():
            run = pathlib.Path(info["run"])
            assert info["done"] and (run / "config.yaml").is_file()
            plain = _train([*TINY, "--agent.gamma", gamma, "--train.seed", seed,
                            "--train.run-dir", str(tmp_path / "plain")])  # fmt: skip
            evals = read_evals(run, "eval/return_mean")
            final = evals[max(evals)]
            assert final == pytest.approx(plain.eval_mean, rel=0, abs=1e-4)  # float32 event
            assert runs_differ(run, plain.run_dir) is None
            finals.append(plain.eval_mean)
        means[gamma] = sum(finals) / len(finals)
    lines = (sweep / "summary.csv").read_text().splitlines()
    ranked = [line.split(",")[2] for line in lines[1:]]
    assert ranked == sorted(means, key=means.get, reverse=True)
    assert math.isclose(float(lines[1].split(",")[4]), max(means.values()), abs_tol=1e-3)
    assert "| 1 |" in (sweep / "summary.md").read_text()
    from rlwb.plot import plot_runs

    curves = plot_runs([str(sweep)], str(tmp_path / "curves.png"), "eval/return_mean")
    assert sorted((seeds, runs) for _, seeds, runs, _ in curves) == [(2, 2), (2, 2)]


def _wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow  # about 100 s on 2 shared cores: two kills, two restarts, a plain run
def test_killed_worker_and_driver_resume_to_the_uninterrupted_run(cluster, tmp_path) -> None:
    budget = ["--train.total-steps", "2000", "--train.learning-starts", "200",
              "--train.eval-every", "1000", "--train.eval-episodes", "2",
              "--train.eval-horizon", "50", "--train.checkpoint-every", "200"]  # fmt: skip
    args = ["ddpg_pendulum", "--seeds", "3", "--sweep-dir", str(tmp_path), "--name", "kill",
            "--address", cluster, *budget]  # fmt: skip
    driver = _sweep(*args, wait=False)
    sweep = tmp_path / "kill"
    state_file = sweep / "default" / "trial.json"
    run = sweep / "default" / "seed-3"

    def checkpoint_after(step: int) -> Any:
        found = ckpt.CheckpointManager(run / "checkpoints").latest()
        return found if found is not None and (ckpt.step_of(found) or 0) > step else None

    try:
        first = _wait_for(lambda: state_file.is_file() and checkpoint_after(0), 120, "a checkpoint")
        pid = json.loads(state_file.read_text())["worker_pid"]
        os.kill(pid, signal.SIGKILL)  # the trial's worker: Tune restarts the trial
        _wait_for(lambda: json.loads(state_file.read_text())["worker_pid"] != pid, 120,
                  "the restarted trial")  # fmt: skip
        _wait_for(lambda: checkpoint_after(ckpt.step_of(first) or 0), 120, "a later checkpoint")
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        assert not (sweep / "summary.md").exists()
    finally:
        if driver.poll() is None:
            driver.kill()
    assert not json.loads(state_file.read_text())["seeds"]["3"]["done"]
    out = _sweep("--resume", str(sweep))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1/1 seeds" in out.stdout
    history = (run / "config.yaml").read_text()
    assert history.count("at_step") >= 2  # resumed after each kill, in its own folder
    plain = _train([*budget, "--train.seed", "3", "--train.run-dir", str(tmp_path / "plain")])
    assert runs_differ(run, plain.run_dir) is None


@pytest.mark.slow  # a Deep GA sweep on the cluster: about a minute on 2 shared cores
def test_deep_ga_ray_actors_inside_a_trial_share_the_cluster(cluster, tmp_path) -> None:
    small = ["--train.task", "Pendulum-v1", "--train.total-steps", "4000", "--train.eval-every",
             "0", "--train.eval-episodes", "2", "--train.checkpoint-every", "1",
             "--agent.population", "8", "--agent.truncation", "2", "--agent.elite-candidates",
             "2", "--agent.elite-episodes", "1", "--agent.noise-table-size", "100000"]  # fmt: skip
    out = _sweep("deep_ga_control", "--seeds", "0", "--sweep-dir", str(tmp_path), "--name", "ga",
                 "--address", cluster, "--cpus-per-trial", "1", *small,
                 "--agent.num-workers", "2")  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    from rlwb.experiments import deep_ga_control

    plain = deep_ga_control.main(
        [*small, "--train.run-dir", str(tmp_path / "plain"), "--train.progress-every", "0"]
    )  # one process, no Ray
    log = (tmp_path / "ga" / "default" / "seed-0.log").read_text()
    assert "Connecting to existing Ray cluster" in log and "Started a local Ray" not in log
    evals = read_evals(tmp_path / "ga" / "default" / "seed-0", "eval/return_mean")
    assert evals[max(evals)] == pytest.approx(plain.eval_mean, rel=0, abs=1e-3)
