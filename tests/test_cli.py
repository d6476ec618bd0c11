"""The ``rlwb`` command. What must be seen from a shell (exit codes, stderr, no traceback,
a fresh process reproducing an evaluation) runs in child processes, started together since
each spends seconds importing torch; the rest calls ``rlwb.cli.main`` in-process."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from rlwb import cli
from rlwb.config import summarize_tyro_error
from rlwb.evaluate import evaluate, format_result
from rlwb.plot import bootstrap_band
from rlwb.train import TrainConfig, train
from tests.helpers import ROOT, subprocess_env
from tests.toy_agent import ToyAgent, ToyConfig


def _train(tmp_path, name: str, **overrides):
    base = dict(
        task="Pendulum-v1", backend="torch", total_steps=400, learning_starts=100,
        eval_every=200, checkpoint_every=200, eval_episodes=3, log_every=100,
        run_dir=str(tmp_path / "runs"), run_name=name, progress=False,
    )  # fmt: skip
    return train(ToyAgent, ToyConfig(), TrainConfig(**{**base, **overrides}))


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Train small runs in-process, then run every CLI case at once in child processes."""
    tmp = tmp_path_factory.mktemp("cli")
    runs = {
        "pendulum": _train(tmp, "pendulum"),
        "seed1": _train(tmp, "seed1", seed=1),
        "mujoco": _train(
            tmp,
            "mujoco",
            task="InvertedPendulum-v5",
            backend="mujoco",
            total_steps=200,
            eval_episodes=2,
            video=True,
        ),  # fmt: skip
    }
    corrupt = tmp / "corrupt.pt"
    corrupt.write_bytes(runs["pendulum"].checkpoint.read_bytes()[:3000])
    cases = {  # only what must run as a real process; the rest runs in-process (fast)
        "eval_run": ["eval", str(runs["pendulum"].run_dir)],
        "bad_experiment": ["train", "no_such_experiment"],
        "bad_key": ["train", "tests.toy_experiment", "--train.bogus", "1"],
        "missing_ckpt": ["eval", str(tmp / "missing.pt")],
        "corrupt_ckpt": ["eval", str(corrupt)],
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "rlwb.cli", *args],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in cases.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    return runs, results, tmp


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``rlwb ARGS`` in this process (help exits through SystemExit, as in a shell)."""
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_reproduces_the_runs_final_evaluation(cli_runs, capsys):
    runs, results, _ = cli_runs
    run = runs["pendulum"]
    code, out, err = results["eval_run"]
    assert code == 0, err
    assert out.strip() == format_result(run.eval_mean, run.eval_std, 3)
    mean, std, returns = evaluate(run.checkpoint, episodes=None)
    assert (mean, std, returns) == (run.eval_mean, run.eval_std, run.eval_returns)
    code, out, err = run_main(capsys, "eval", str(run.checkpoint), "--episodes", "2", "--seed", "5")
    assert code == 0, err
    mean, std, _ = evaluate(run.checkpoint, episodes=2, seed=5)
    assert out.strip() == format_result(mean, std, 2) and mean != run.eval_mean


def test_eval_under_changed_task_settings_prints_the_change(cli_runs, capsys):
    run = cli_runs[0]["pendulum"]
    args = ["eval", str(run.run_dir), "--task-kwargs", "g", "15.0", "max_episode_steps", "50"]
    code, out, err = run_main(capsys, *args)
    assert code == 0, err
    change, result = out.strip().splitlines()
    assert change == "task_kwargs changed: g default -> 15.0, max_episode_steps default -> 50"
    mean, std, returns = evaluate(
        run.run_dir, None, task_kwargs={"g": 15.0, "max_episode_steps": 50}
    )
    assert result == format_result(mean, std, 3) and mean != run.eval_mean
    assert capsys.readouterr().out.startswith("task_kwargs changed: g default -> 15.0")
    code, out, err = run_main(capsys, *args[:2], "--task-kwargs", "bogus", "1")
    _assert_one_error_line(code, err, r"unknown argument\(s\) 'bogus' for task 'Pendulum-v1'")
    assert code == 2 and out == ""


def test_eval_writes_a_video_of_a_mujoco_policy(cli_runs, capsys):
    runs, _, tmp = cli_runs
    code, out, err = run_main(
        capsys, "eval", str(runs["mujoco"].checkpoint), "--video", str(tmp / "v.mp4")
    )
    assert code == 0, err
    assert (tmp / "v.mp4").stat().st_size > 1000
    videos = list((runs["mujoco"].run_dir / "videos").glob("*.mp4"))  # --train.video
    assert [v.name for v in videos] == ["eval_step_000000000200.mp4"] and videos[
        0
    ].stat().st_size > 1000
    assert out.splitlines()[0] == format_result(
        runs["mujoco"].eval_mean, runs["mujoco"].eval_std, 2
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(runs["mujoco"].run_dir))
    acc.Reload()
    (image,) = acc.Images("eval/video")  # the video in TensorBoard too, as an animated GIF
    assert image.step == 200 and image.encoded_image_string[:6] == b"GIF89a"


@pytest.mark.parametrize(
    "case,message",
    [
        ("bad_experiment", r"unknown experiment 'no_such_experiment'; available: "),
        ("bad_key", r"Unrecognized options: --train\.bogus"),
        ("missing_ckpt", r"no checkpoint at .*missing\.pt"),
        ("corrupt_ckpt", r"corrupt\.pt (is truncated or corrupt|is not an rlwb checkpoint)"),
    ],
)
def test_bad_input_in_a_shell_gives_one_clear_line(cli_runs, case, message):
    code, out, err = cli_runs[1][case]
    _assert_one_error_line(code, err, message)


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["train", "tests.toy_experiment", "--train.total-steps", "abc"],
            r"--train\.total-steps.*'abc'",
        ),
        (
            ["train", "tests.toy_experiment", "--train.task", "NoSuchTask-v9"],
            r"unknown task id 'NoSuchTask-v9'",
        ),
        (["train", "tests.toy_experiment", "--train.backend", "warpx"], r"unknown backend 'warpx'"),
        (["eval", "x.pt", "--episodes", "0"], r"no checkpoint at x\.pt"),
        (["plot", "no/such/run"], r"no run at no/such/run"),
        (["frobnicate"], r"unknown command 'frobnicate'"),
    ],
)
def test_bad_input_gives_one_clear_line(capsys, tmp_path, args, message):
    code, _, err = run_main(
        capsys, *args, *(["--train.run-dir", str(tmp_path)] if args[0] == "train" else [])
    )
    _assert_one_error_line(code, err, message)


def _assert_one_error_line(code: int, err: str, message: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rlwb: error: ") and re.search(message, lines[0]), lines[0]


def test_help_and_list(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0 and "train" in out and "plot" in out
    code, out, _ = run_main(capsys, "eval", "--help")
    assert code == 0 and "--episodes" in out
    code, out, _ = run_main(capsys, "train", "tests.toy_experiment", "--help")
    assert code == 0 and "--train.total-steps" in out and "--resume" in out
    code, listing, _ = run_main(capsys, "list")
    assert code == 0
    assert re.search(r"Pendulum-v1\s+torch,gym", listing)
    assert re.search(r"^\s+mujoco\s+available", listing, re.M)
    assert re.search(r"^\s+warp\s+(available|unavailable: .+)", listing, re.M)
    assert "ddpg" in listing.split("agents:")[1]


def test_plot_groups_seeds_into_one_curve(cli_runs, capsys):
    runs, _, tmp = cli_runs
    dirs = [str(runs["pendulum"].run_dir), str(runs["seed1"].run_dir)]
    code, out, err = run_main(capsys, "plot", *dirs, "-o", str(tmp / "curves.png"))
    assert code == 0, err
    assert "toyagent (Pendulum-v1): 2 seeds, up to step 400" in out
    assert (tmp / "curves.png").stat().st_size > 10_000


def test_bootstrap_band_brackets_the_mean():
    curves = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, np.nan], [1.0, 2.0, 4.0]])
    mean, low, high = bootstrap_band(curves)
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0])
    assert np.all(low <= mean) and np.all(mean <= high)
    assert low[0] >= 0.0 and high[0] <= 2.0 and high[0] - low[0] > 0.5


def test_tyro_errors_become_one_line_boxed_coloured_or_plain():
    boxed = (
        "\x1b[31m╭─ Value error ─────╮\x1b[0m\n│ Error parsing --x: bad 'abc' │\n│ ───── │\n"
        "│ Argument helptext: │\n╰───────╯\n"
    )
    plain = (
        " Value error \n ------ \n  Error parsing --x:\n  bad 'abc'\n  ------\n"
        "  For full helptext\n"
    )
    for text in (boxed, plain):
        assert (
            summarize_tyro_error(text)
            == "bad command line: Error parsing --x: bad 'abc' (see --help)"
        )
