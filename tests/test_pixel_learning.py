"""Learning from pixels: a short DDPG run on 48 x 48 cartpole-swingup renders beats the same
agent untrained on the same evaluation episodes, for two seeds (slow: a minute or two).

The setting is the benchmark's (``benchmarks/pixel_tdmpc_learning.py --agent ddpg``):
``DDPGConfig.pixels()`` with 16 conv channels and batch 32, 3 stacked frames, action repeat
8, 250 random agent steps, then one update per agent step, 6,000 env steps in all. The
untrained actor's near-zero actions leave the pole hanging (return 0); the trained one moves
the cart and swings the pole (about 75). That is learning from pixels, not a swing-up: the
budget a CPU test allows is far below the 100k+ env steps a swing-up takes. Pixel TD-MPC at
this budget stays at its untrained planner's level (``benchmarks/results_pending``).
"""

from __future__ import annotations

import sys

import pytest

from tests.helpers import ROOT

SETTING = dict(
    task="cartpole-swingup", agent="ddpg", image_size=48, channels=16, batch=32,
    env_steps=6_000, learning_starts=250, eval_every=750, eval_episodes=2,
)  # fmt: skip
MARGIN = 40.0  # return over 1,000 env steps, rewards in [0, 1]


def _benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import pixel_tdmpc_learning
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return pixel_tdmpc_learning


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_pixel_ddpg_beats_its_untrained_self_on_cartpole_swingup(seed: int) -> None:
    bench = _benchmark()
    out = bench.learning_check(bench.Setting(seed=seed, **SETTING))
    assert out.trained > out.untrained + MARGIN, out
