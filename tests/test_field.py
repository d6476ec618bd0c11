"""What a new user meets running the README: videos of every task family, unwritable paths,
readable plots of many runs, quiet warnings, the README's offered tasks."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from rlwb import cli
from rlwb.evaluate import evaluate, format_result
from rlwb.train import TrainConfig, train
from tests.test_cli import run_main  # `rlwb ARGS` in this process
from tests.toy_agent import ToyAgent, ToyConfig


# ---------------------------------------------------------------------- videos
@pytest.fixture(scope="module")
def dmc_run(tmp_path_factory):
    """A tiny run on a DMC task with an action repeat and a short time limit, video on."""
    tmp = tmp_path_factory.mktemp("dmc")
    config = TrainConfig(
        task="cartpole-swingup", backend="mujoco", total_steps=40, learning_starts=20,
        eval_every=40, checkpoint_every=40, eval_episodes=1, run_dir=str(tmp / "runs"),
        run_name="dmc", progress=False, video=True,
        task_kwargs={"max_episode_steps": 6, "action_repeat": 2},
    )  # fmt: skip
    return train(ToyAgent, ToyConfig(), config), tmp


def test_dmc_videos_render_with_the_runs_action_repeat_and_time_limit(dmc_run):
    import imageio.v2 as imageio

    result, tmp = dmc_run
    (video,) = (result.run_dir / "videos").glob("*.mp4")  # --train.video
    reader = imageio.get_reader(video)
    # the reset frame, then every task step of 6 engine steps of 2 task steps each
    assert reader.count_frames() == 1 + 6 * 2
    assert reader.get_meta_data()["fps"] == 100  # cartpole's 0.01 s control step
    mean, std, returns = evaluate(result.checkpoint, episodes=None, video=tmp / "e.mp4")
    assert (mean, std, returns) == (result.eval_mean, result.eval_std, result.eval_returns)
    assert (tmp / "e.mp4").stat().st_size > 1000


def test_a_failed_video_still_prints_the_return(dmc_run, capsys, monkeypatch):
    from rlwb import video

    result, tmp = dmc_run

    def broken(*args, **kwargs):
        raise RuntimeError("renderer lost its context")

    monkeypatch.setattr(video, "_episode_frames", broken)
    code, out, err = run_main(capsys, "eval", str(result.checkpoint), "--video", str(tmp / "f.mp4"))
    assert code == cli.EXIT_ERROR
    assert out.splitlines() == [format_result(result.eval_mean, result.eval_std, 1)]
    assert err.count("\n") == 1 and "no video" in err and "renderer lost its context" in err
    assert "Traceback" not in err and not (tmp / "f.mp4").exists()


def test_classic_control_video_is_quiet(tmp_path, capfd):
    pytest.importorskip("pygame")
    from rlwb.engine import make_engine
    from rlwb.video import record_video

    engine = make_engine("Pendulum-v1", 1, backend="torch", seed=0)
    agent = ToyAgent(ToyConfig(), engine.spec, engine.device)
    frames, _ = record_video(agent, "Pendulum-v1", tmp_path / "p.gif", max_steps=3)
    assert len(frames) == 4
    out, err = capfd.readouterr()
    assert "XDG_RUNTIME_DIR" not in out + err and "pygame" not in out + err


# ---------------------------------------------------------------------- unwritable paths
def test_unwritable_paths_are_one_line_and_create_nothing(dmc_run, tmp_path, capsys):
    result, _ = dmc_run
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cases = [
        ["train", "tests.toy_experiment", "--train.run-dir", str(blocker / "runs")],
        ["plot", str(result.run_dir), "-o", str(blocker / "x.png")],
        ["plot", str(result.run_dir), "-o", str(tmp_path / "missing" / "x.png")],
        ["plot", str(result.run_dir), "-o", str(tmp_path)],
        ["eval", str(result.checkpoint), "--video", str(tmp_path / "no" / "dir" / "x.mp4")],
    ]
    for args in cases:
        code, out, err = run_main(capsys, *args)
        assert code == cli.EXIT_ERROR, (args, out, err)
        assert err.startswith("rlwb: error: ") and err.count("\n") == 1, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_os_errors_naming_a_file_are_one_line(capsys, monkeypatch):
    """Where no check comes first (a run folder under /sys, a plot into /proc), the
    file-system's own error is the line."""

    def denied(args):
        raise PermissionError(1, "Operation not permitted", "/sys/rlwb")

    monkeypatch.setitem(cli.COMMANDS, "list", (denied, ""))
    code, out, err = run_main(capsys, "list")
    assert (code, err) == (cli.EXIT_ERROR, "rlwb: error: /sys/rlwb: Operation not permitted\n")


# ---------------------------------------------------------------------- plots of many runs
def _fake_run(root: pathlib.Path, name: str, experiment: str, task: str, seed: int,
              agent: dict, steps: list[int]) -> None:  # fmt: skip
    """A run folder as the runner writes it: config.yaml and eval/return_mean events."""
    from torch.utils.tensorboard import SummaryWriter

    run = root / name
    run.mkdir(parents=True)
    lines = [f"experiment: {experiment}", "train:", f"  task: {task}", f"  seed: {seed}", "agent:"]
    lines += [f"  {k}: {v}" for k, v in agent.items()] or ["  {}"]
    (run / "config.yaml").write_text("\n".join(lines) + "\n")
    writer = SummaryWriter(str(run))
    for step in steps:
        value = seed + step / 1000 * agent["gamma"] ** 20  # settings apart in the picture
        writer.add_scalar("eval/return_mean", value, step)
    writer.close()


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory):
    """23 configurations over 9 tasks, as the README's commands leave them: several settings
    of one experiment on a task, seeds whose evaluations start at different steps."""
    root = tmp_path_factory.mktemp("many") / "runs"
    tasks = ["Pendulum-v1", "HalfCheetah-v5", "Hopper-v5", "cheetah-run", "cartpole-swingup",
             "PointMaze-Open-Goal-v0", "Quadrotor-Obstacles-v0", "InvertedPendulum-v5",
             "MountainCarContinuous-v0"]  # fmt: skip
    count = 0
    for t, task in enumerate(tasks):
        for variant in range(3 if t < 5 else 2):
            agent = {"gamma": 0.9 + variant / 100, "hidden_layers_with_a_long_name": 256}
            for seed in range(2):
                steps = list(range(1000 * (seed + 1), 12_000, 1000))  # seed 1 starts later
                _fake_run(root, f"r{count}", f"exp{t % 4}", task, seed, agent, steps)
                count += 1
    return root


def test_plot_of_many_runs_has_a_panel_per_task_and_no_warning(many_runs, tmp_path, capsys):
    import warnings

    from rlwb.plot import plot_runs

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" and the like
        summary = plot_runs([many_runs], tmp_path / "c.png")
    assert len(summary) == 23 and all(seeds == 2 for _, seeds, _, _ in summary)
    image = plt_image(tmp_path / "c.png")
    assert image.shape[0] > image.shape[1]  # panels stacked in two columns, legends below
    code, out, err = run_main(capsys, "plot", str(many_runs), "-o", str(tmp_path / "d.png"))
    assert code == 0 and err == "" and len(out.splitlines()) == 24


def plt_image(path: pathlib.Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_plot_legends_stay_outside_the_axes(many_runs, tmp_path, monkeypatch):
    import matplotlib.figure

    from rlwb.plot import plot_runs

    figures = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda self, *a, **k: figures.append(self)
    )
    plot_runs([many_runs], tmp_path / "c.png")
    (fig,) = figures
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    agg = FigureCanvasAgg(fig)  # the closed figure's canvas, drawn again to measure
    agg.draw()
    renderer = agg.get_renderer()
    plotted = [ax for ax in fig.axes if ax.lines]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(plotted) == 9 and len(legends) == 9
    canvas = fig.bbox
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 + 1  # not cut off
        assert canvas.y0 <= box.y0 and box.y1 <= canvas.y1 + 1
        for ax in plotted:
            assert not box.overlaps(ax.get_window_extent(renderer))  # never over the curves


# ---------------------------------------------------------------------- peers apart
def test_contenders_alternate_each_in_a_fresh_process():
    import os

    from rlwb.apart import Contender, by_name, run_apart

    contenders = [
        Contender("a", "os:getpid"),
        Contender("b", "os:getenv", {"key": "RLWB_APART_PROBE"}, env={"RLWB_APART_PROBE": "b"}),
        Contender("broken", "os:no_such_function"),
    ]
    records = run_apart(contenders, rounds=2)
    assert [r.name for r in records] == ["a", "b", "broken", "b", "broken", "a"]
    assert [r.position for r in records] == list(range(6))
    pids = [r.pid for r in records if r.name != "broken"]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    assert all(r.value == r.pid for r in records if r.name == "a")  # measured in its child
    assert by_name(records)["b"] == "b" and by_name(records)["broken"] is None
    assert all("AttributeError" in r.error for r in records if r.name == "broken")


def test_throughput_peers_run_in_their_own_processes():
    """The smoke mode of benchmarks/torch_throughput.py goes through the peer path: every
    contender (engine, ceiling, Gymnasium) measured in a process of its own."""
    import os
    import sys

    from tests.helpers import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import torch_throughput
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    records = torch_throughput.main(["--smoke"])
    assert [r.name for r in records] == ["engine eager", "ceiling eager", "gymnasium"]
    assert all(r.error is None and r.value > 0 for r in records), records
    pids = [r.pid for r in records]
    assert len(set(pids)) == 3 and os.getpid() not in pids


# ---------------------------------------------------------------------- small things
def test_settotalmass_deprecation_is_silenced_at_model_load(tmp_path):
    """Gymnasium's and dm_control's cheetah models: no deprecation line and no
    MUJOCO_LOG.TXT, from rlwb's engines and from Gymnasium's envs made beside them."""
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    code = (
        "from rlwb.engine import make_engine\n"
        "e = make_engine('HalfCheetah-v5', 2, backend='mujoco', seed=0)\n"
        "e.spawn(3).close(); e.close()\n"
        "make_engine('HalfCheetah-v5', 1, backend='gym', seed=0).close()\n"
        "make_engine('cheetah-run', 1, backend='mujoco', seed=0).close()\n"
        "print('built')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "built" and "settotalmass" not in out.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_other_mujoco_warnings_still_print(capsys, tmp_path, monkeypatch):
    from rlwb.envs.mujoco import log

    monkeypatch.chdir(tmp_path)  # MuJoCo's log file lands in the working folder
    monkeypatch.setattr(log, "_previous", [None])  # no handler before ours: MuJoCo's way
    log._warning("compiler attribute 'settotalmass' is deprecated and will be removed")
    log._warning("Nan, Inf or huge value in QACC at DOF 0")
    assert capsys.readouterr().out == "WARNING: Nan, Inf or huge value in QACC at DOF 0\n\n"
    seen = []
    monkeypatch.setattr(log, "_previous", [seen.append])  # dm_control's, for instance
    log._warning("compiler attribute 'settotalmass' is deprecated and will be removed")
    log._warning("Nan, Inf or huge value in QACC at DOF 1")
    assert seen == ["Nan, Inf or huge value in QACC at DOF 1"]


def test_bench_with_an_unknown_task_is_one_line(capsys):
    code, out, err = run_main(capsys, "bench", "--tasks", "Nope-v1")
    assert code == cli.EXIT_ERROR and out == ""
    assert err.startswith("rlwb: error: unknown task id 'Nope-v1'") and err.count("\n") == 1


def test_readme_warp_row_names_the_tasks_warp_cannot_run():
    from rlwb import tasks
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `warp` |")]
    mujoco = [t for t, e in tasks.all_tasks().items() if e.family == "mujoco" and e.gym_id]
    without_warp = sorted(
        t.removesuffix("-v5") for t in mujoco if "warp" not in tasks.find(t).backends
    )
    assert without_warp, "every MuJoCo task runs on warp: say so in the README"
    named = row.split("except ", 1)[1].split(" (", 1)[0]
    assert sorted(named.replace(" and ", ", ").split(", ")) == without_warp


def test_goal_maze_experiments_run_the_readmes_robotics_mazes(tmp_path):
    pytest.importorskip("gymnasium_robotics")
    import torch

    from rlwb.engine import make_engine
    from rlwb.experiments import ddpg_her_maze, gdg_maze
    from rlwb.experiments._task_presets import config_for

    for experiment in (gdg_maze, ddpg_her_maze):
        config = config_for(["--train.task", "PointMaze_UMaze-v3"], experiment.Config,
                            experiment.TASK_PRESETS)().train  # fmt: skip
        assert config.backend == "gym" and "min_goal_distance" not in config.task_kwargs
    engine = make_engine("PointMaze_UMaze-v3", 2, backend="gym", seed=0, continuing_task=False)
    engine.reset(seed=0)
    action = torch.full((2, engine.spec.action_dim), 0.3)
    engine.step(action)
    state = engine.get_state()  # the ball's physics and the goal: checkpoints resume exactly
    first = [engine.step(action)[0] for _ in range(3)]
    engine.set_state(state)
    assert all(torch.equal(a, engine.step(action)[0]) for a in first)
    result = gdg_maze.main(["--train.task", "PointMaze_UMaze-v3", "--train.total-steps", "200",
                            "--train.learning-starts", "100", "--train.eval-episodes", "2",
                            "--train.run-dir", str(tmp_path), "--train.no-progress"])  # fmt: skip
    assert result.checkpoint is not None and result.run_dir.name.startswith("gdg_maze-")
