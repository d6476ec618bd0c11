"""Every script in ``benchmarks/`` runs, on tiny arguments, so that none rots unnoticed.

Each script is loaded as a module and its ``if __name__ == "__main__":`` block run in this
process with the smoke arguments as ``sys.argv`` (a child interpreter per script would
spend more on imports than the runs take). A script that needs an optional peer package is
skipped, naming it, where it is missing. :data:`SMOKE` must name every script; a new
script without an entry fails :func:`test_every_benchmark_script_has_a_smoke_entry`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import pathlib
import shlex
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT

BENCHMARKS = ROOT / "benchmarks"


@dataclasses.dataclass
class Smoke:
    args: str
    """The command line's arguments; ``{tmp}`` becomes a fresh temporary folder, ``{deep_ga_run}``
    a tiny Deep GA run folder."""
    expect: str = "|"
    """Text the output must hold (a table row by default)."""
    requires: tuple[str, ...] = ()
    """Modules the script cannot run without (optional peers)."""
    child: bool = False
    """Run it as ``python benchmarks/NAME`` in a child interpreter: a script whose worker
    processes import its own module cannot run from a module loaded by path."""


SMOKE: dict[str, Smoke] = {
    "atari_learning.py": Smoke(
        "--games Pong-v5 --total-steps 200 --random-episodes 2 --run-dir {tmp} --preset "
        "--agent.population 3 --agent.truncation 2 --agent.conv small "
        "--agent.elite-candidates 1 --agent.elite-episodes 1 --agent.chunk 3 "
        "--train.task-kwargs.max-episode-steps 30 --train.eval-episodes 1 --train.no-progress",
        "| Pong-v5 | ",
        ("envpool",),
    ),
    "atari_throughput.py": Smoke(
        "--sizes 2 --steps 3 --rounds 1 --conv small --inline", "| 2 |", ("envpool",)
    ),
    "cem_mpc_bench.py": Smoke(
        "--task InvertedPendulum-v5 --steps 2 --samples 4 --horizon 3 --iterations 1 --elites 2",
        "| gym-copies |",
    ),
    "cem_mpc_pendulum_sweep.py": Smoke(
        "--members 1 --steps 2 --agent.planner.samples 4 --agent.planner.horizon 3 "
        "--agent.planner.iterations 1 --agent.planner.elites 2",
        "members up for 2 steps",
    ),
    "ddpg_vs_sb3.py": Smoke(
        "--tasks InvertedPendulum-v5 --steps 40 --learning-starts 20 --seeds 0 --eval-episodes 1",
        "| InvertedPendulum-v5 | sb3 |",
        ("stable_baselines3",),
    ),
    "deep_ga_bench.py": Smoke(
        "--tasks Hopper-v5 --population 4 --horizon 3 --rounds 1 --evotorch-threads",
        "| Hopper-v5 |",
    ),
    "deep_ga_humanoid_curve.py": Smoke("{deep_ga_run}", "| 1 |"),
    "dmc_throughput.py": Smoke(
        "--tasks cheetah-run --members 1 --seconds 0.02 --repeats 1",
        "| cheetah-run | 1 |",
        ("dm_control", "shimmy"),
    ),
    "engine_one_member.py": Smoke(
        "--tasks Hopper-v5 --calls 4 --warm-steps 2 --rounds 1 --block 2", "| Hopper-v5 |"
    ),
    "engine_step_overhead.py": Smoke(
        "--task Hopper-v5 --num-envs 2 --threads 1 --warm-steps 2 --repeats 2", "ceiling"
    ),
    "engine_throughput.py": Smoke(
        "--tasks Hopper --num-envs 2 --seconds 0.02 --threads 1 --peers sync --horizon 4",
        "| Hopper-v5 | 2 |",
    ),
    "gdg_bench.py": Smoke(
        "--mazes open --agents gdg ddpg_her --seeds 0 --steps 1008 --evals 1 --workers 1 "
        "--out {tmp}/gdg.jsonl",
        "| gdg | 1 |",
        child=True,
    ),
    "pixel_tdmpc_learning.py": Smoke("--smoke", "| 0 (untrained) |"),
    "pixel_throughput.py": Smoke("--smoke", "| cheetah-run | 1 |", ("dm_control", "shimmy")),
    "safe_mpc_bench.py": Smoke(
        "--episodes 1 --steps 2", "| obstacles | gp_filter (CLF + CBF) |", ("qpsolvers",)
    ),
    "tdmpc_bench.py": Smoke("--repeats 1 --no-small", "| official | wall |"),
    "tdmpc_dmc_curves.py": Smoke("", "covered by tests/test_tdmpc_curves.py"),
    "pets_vs_mbrl.py": Smoke("", "covered by tests/test_pets.py"),
    "sweep_soak.py": Smoke("--smoke", "| soak | 1 | 0/1 |", ("ray.tune",)),
    "tdmpc_vs_authors.py": Smoke("--smoke", "skipped: no --authors PATH"),
    "torch_throughput.py": Smoke(
        "--smoke --threads 1", "| Pendulum-v1 | 64 |"
    ),
}
COVERED_ELSEWHERE = {"tdmpc_dmc_curves.py", "pets_vs_mbrl.py"}
"""Scripts smoke-tested by their own tests: on fabricated runs (curves), or with a worker
process that imports the script by path (the PETS side-by-side, in tests/test_pets.py)."""


def test_every_benchmark_script_has_a_smoke_entry():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")}
    assert scripts == set(SMOKE), (
        f"add smoke entries for {sorted(scripts - set(SMOKE))}; "
        f"remove entries of {sorted(set(SMOKE) - scripts)}"
    )


def _main_block(tree: ast.Module) -> ast.Module:
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return ast.Module(body=node.body, type_ignores=[])
    raise AssertionError("no `if __name__ == '__main__':` block")


def run_script(name: str, args: list[str], monkeypatch) -> None:
    """``python benchmarks/NAME ARGS``, in this process."""
    path = BENCHMARKS / name
    module_name = f"benchmark_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        exec(compile(_main_block(ast.parse(path.read_text())), str(path), "exec"), vars(module))
    except SystemExit as exc:
        assert exc.code in (0, None), f"{name} exited with {exc.code!r}"
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def deep_ga_run(tmp_path_factory) -> pathlib.Path:
    from rlwb.agents import DeepGA
    from rlwb.train import TrainConfig, train
    from tests.agent_setups import config_of

    cfg = TrainConfig(
        task="Pendulum-v1", backend="torch", total_steps=50, eval_every=0, checkpoint_every=0,
        eval_episodes=1, eval_horizon=3, log_every=1, progress=False,
        run_dir=str(tmp_path_factory.mktemp("deep_ga")), run_name="r",
    )  # fmt: skip
    return train(DeepGA, config_of(DeepGA), cfg).run_dir


@pytest.mark.parametrize("name", sorted(set(SMOKE) - COVERED_ELSEWHERE))
def test_benchmark_runs_in_smoke_mode(name, tmp_path, monkeypatch, capsys, request):
    smoke = SMOKE[name]
    for module in smoke.requires:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{name} needs {module}, which is not installed")
    monkeypatch.chdir(tmp_path)  # anything a script writes by default lands here
    args = [a.replace("{tmp}", str(tmp_path)) for a in shlex.split(smoke.args)]
    if "{deep_ga_run}" in args:
        run = request.getfixturevalue("deep_ga_run")
        args = [str(run) if a == "{deep_ga_run}" else a for a in args]
    if smoke.child:
        done = subprocess.run(
            [sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out = done.stdout
    else:
        run_script(name, args, monkeypatch)
        out = capsys.readouterr().out
    assert smoke.expect in out, out[-2000:]
