"""Ray nodes started on this machine and stopped exactly: a head and worker nodes, each a
``ray start --block`` process group of the caller, for tests and benchmarks of a cluster.

``ray stop`` would stop every Ray on the machine, other users' included; signalling the
node's own process group stops only what this node started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from rlwb.errors import RlwbError

# A cluster on the loopback address for one user: no token to hand to every process.
LOCAL_ENV = {"RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _can_connect(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ray_start(cpus: float, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # Ray's command line, from this interpreter's Ray
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus",
         f"{cpus:g}", "--num-gpus", "0", "--disable-usage-stats",
         "--node-ip-address", "127.0.0.1", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=dict(os.environ, **LOCAL_ENV),
    )  # fmt: skip


def stop_node(node: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the node's process group, SIGKILL after two seconds."""
    if node.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGTERM)
    try:
        node.wait(timeout=2)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()


def alive_nodes(address: str) -> int:
    """Nodes the cluster at ``address`` reports alive (0 if it cannot be reached)."""
    code = ("import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True,
                         env=dict(os.environ, **LOCAL_ENV))  # fmt: skip
    lines = out.stdout.strip().splitlines()
    return int(lines[-1]) if out.returncode == 0 and lines else 0


@contextlib.contextmanager
def local_cluster(nodes: int = 1, cpus_per_node: float = 2, timeout: float = 120) -> Iterator[str]:
    """``HOST:PORT`` of a head plus ``nodes - 1`` worker nodes on this machine, all stopped
    on exit."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    started = [_ray_start(cpus_per_node, "--head", "--port", str(port),
                          "--include-dashboard", "false")]  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not _can_connect(port):
            if time.monotonic() > deadline or started[0].poll() is not None:
                raise RlwbError(f"the Ray head node did not start within {timeout:g} s")
            time.sleep(0.5)
        for _ in range(nodes - 1):
            started.append(_ray_start(cpus_per_node, "--address", address))
        while alive_nodes(address) < nodes:
            if time.monotonic() > deadline:
                raise RlwbError(f"{nodes} Ray nodes did not start within {timeout:g} s")
            time.sleep(1)
        yield address
    finally:
        for node in reversed(started):
            stop_node(node)
