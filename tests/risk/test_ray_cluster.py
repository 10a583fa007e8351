"""``--ray-address`` against a real multi-process Ray cluster on this machine.

A head node (``ray start --head --num-cpus=1``) and a worker node joining it
(``ray start --address=... --num-cpus=1``) run as separate process trees; the sweep connects
to the cluster by address, and its table must be identical to the local process pool's and
a local Ray instance's (every column but ``seconds``).

Both nodes run with ``--block`` in their own session, so teardown stops exactly them: SIGTERM
to each node's process group (``ray start --block`` then stops the processes it started),
SIGKILL after a bounded wait. ``ray stop`` is never used: it stops every Ray process of the
machine, including other users'.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backtest.risk.sweep import DataSpec, EngineRunner, make_grid, run_sweep
from tests.risk.walk_bars import write_walk_bars

pytestmark = pytest.mark.ray

SYMBOL = "BTC/USDT:USDT"
REPO = Path(__file__).resolve().parents[2]
#: Longest wait for the cluster to come up (two nodes registered), s.
START_TIMEOUT_S = 90
#: Longest wait for a node's process group to exit after SIGTERM, s (then SIGKILL).
STOP_TIMEOUT_S = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        pytest.skip("the ray command is not installed (pip install margincall[ray])")
    return found


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the node's process group, then SIGKILL it if it outlives STOP_TIMEOUT_S."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    try:  # anything the node started and left behind in its group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """Address ``127.0.0.1:<port>`` of a head and one worker node, each with one CPU."""
    ray = pytest.importorskip("ray")
    cli = _ray_cli()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # a short folder of its own: Ray's socket paths must stay under the 107-byte AF_UNIX limit
    temp = tempfile.mkdtemp(prefix="mcray", dir="/tmp")
    # a throw-away cluster on the loopback for one test module: no token authentication (Ray
    # 2.5x enables it by default and keeps the token in ~/.ray, which a test must not touch)
    driver_env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in driver_env}
    os.environ.update(driver_env)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    logs = [open(Path(temp) / name, "wb") for name in ("head.log", "worker.log")]
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(subprocess.Popen([cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                                       "--include-dashboard=false", f"--temp-dir={temp}", *common],
                                      env=env, stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + START_TIMEOUT_S
        joined = False
        while time.monotonic() < deadline and not joined:
            if nodes[0].poll() is not None:
                pytest.fail(f"ray head exited ({nodes[0].returncode}): {(Path(temp) / 'head.log').read_text()[-2000:]}")
            if len(nodes) == 1:
                probe = subprocess.run([cli, "status", f"--address={address}"], env=env, capture_output=True,
                                       text=True, timeout=30)
                if probe.returncode == 0:
                    nodes.append(subprocess.Popen(
                        [cli, "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
                        env=env, stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True))
            else:
                probe = subprocess.run([cli, "status", f"--address={address}"], env=env, capture_output=True,
                                       text=True, timeout=30)
                joined = probe.returncode == 0 and probe.stdout.count("node_") >= 2
            if not joined:
                time.sleep(1.0)
        if not joined:
            pytest.fail(f"the Ray cluster did not get two nodes within {START_TIMEOUT_S} s: "
                        f"{(Path(temp) / 'worker.log').read_text()[-2000:] if len(nodes) > 1 else 'no worker'}")
        assert not ray.is_initialized()
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
        for handle in logs:
            handle.close()
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> DataSpec:
    path = write_walk_bars(tmp_path_factory.mktemp("ray-sweep") / "bars.parquet", seed=9, n=1_200, start=20_000.0,
                           sigma=0.01, high_factor=1.002, low_factor=0.998, step_ms=3_600_000, volume=1_000.0)
    return DataSpec(symbol=SYMBOL, timeframe="1h", bars_path=str(path))


def test_sweep_table_is_identical_on_the_pool_local_ray_and_a_cluster(spec: DataSpec, ray_cluster: str):
    from backtest import RunConfig

    import ray

    grid = make_grid([3, 20], {"fast": [10, 30], "slow": [60]})
    base = RunConfig(slippage="none")
    runner = EngineRunner("sma_cross")
    pooled = run_sweep(spec, "sma_cross", grid, base_config=base, runner=runner, workers=2, progress=False)
    local_ray = run_sweep(spec, "sma_cross", grid, base_config=base, runner=runner, workers=1, backend="ray",
                          progress=False)
    cluster = run_sweep(spec, "sma_cross", grid, base_config=base, runner=runner, workers=2,
                        ray_address=ray_cluster, chunk_size=1, progress=False)
    assert not ray.is_initialized()  # each sweep shut down the connection it opened
    assert (pooled.backend, local_ray.backend, cluster.backend) == ("local", "ray", "ray")
    expected = pooled.table.drop("seconds")
    assert expected.height == len(grid)
    assert local_ray.table.drop("seconds").equals(expected)
    assert cluster.table.drop("seconds").equals(expected)


def test_the_cluster_has_two_nodes_running_tasks(ray_cluster: str):
    """The address reaches a two-node cluster, and tasks run on both nodes (not the driver)."""
    import ray

    ray.init(address=ray_cluster, include_dashboard=False, log_to_driver=False)
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
        assert len(alive) == 2 and sum(n["Resources"].get("CPU", 0) for n in alive) == 2

        @ray.remote(num_cpus=1)
        def where() -> str:
            time.sleep(0.5)  # hold the CPU so the other task must go to the other node
            return ray.get_runtime_context().get_node_id()

        nodes = set(ray.get([where.remote() for _ in range(2)], timeout=60))
        assert nodes == {n["NodeID"] for n in alive}
    finally:
        ray.shutdown()
