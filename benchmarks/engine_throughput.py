"""Engine throughput benchmark (env steps/s vs Gymnasium vector envs, EnvPool and the
``mujoco.rollout`` ceiling). Same as ``rlwb bench``; see ``rlwb.bench`` for the flags, e.g.

    python benchmarks/engine_throughput.py --tasks HalfCheetah Hopper --num-envs 1 16 64 \
        --seconds 2 --output benchmarks/RESULTS.md
"""

from rlwb.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
