"""`prefdata build --ray`: generation and judging on a local two-worker Ray cluster started here (`ray start`),
with the embedded model in each worker. The built data has the same bytes as a local build, and a worker killed
mid-run is replaced with nothing lost and no answer cached twice."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")
QUICKSTART = ROOT / "examples" / "quickstart"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
                    "--disable-usage-stats"], check=True, capture_output=True, env=env)
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env)


def _spec(work: Path, cache: str) -> Path:
    spec = {"name": "ray", "sources": [{"path": str(QUICKSTART / "prompts.jsonl"), "limit": 4}],
            "generate": {"backend": {"kind": "embedded", "batch_size": 2}, "n": 2, "temperatures": [0.7, 1.0],
                         "max_tokens": 16},
            "judges": [{"name": "smol", "kind": "pairwise", "backend": {"kind": "embedded", "batch_size": 4},
                        "max_tokens": 24, "swap": True, "retries": 0}],
            "cache": cache, "validation": {"min_pairs": 1}}
    path = work / f"{cache}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {key for (key,) in db.execute("SELECT key FROM responses")}


def _rows(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return 0


def _workers() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "ray::_Worker"], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_a_ray_build_matches_the_local_build_and_survives_a_killed_worker(cluster, embedded_model, tmp_path):
    # a worker reserves one CPU, so Ray runs it with one thread (OMP_NUM_THREADS=1); torch's sums depend on the
    # thread count, so the local build it is compared with runs with one too (with two, log-probabilities differ
    # in the 7th digit and the texts not at all)
    local = run_cli("build", _spec(tmp_path, "local.sqlite"), "--output", tmp_path / "local",
                    env={"OMP_NUM_THREADS": "1"})
    assert local.returncode in (0, 1), local.stderr[-3000:]
    build = subprocess.Popen([sys.executable, "-m", "prefdata", "build", str(_spec(tmp_path, "ray.sqlite")),
                              "--output", str(tmp_path / "ray"), "--ray", "--ray-address", cluster],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, deadline = None, time.monotonic() + 600
    while killed is None and time.monotonic() < deadline and build.poll() is None:
        workers = _workers()
        if len(workers) >= 2 and _rows(tmp_path / "ray.sqlite") >= 2:  # some answers are in: kill mid-run
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    assert killed is not None, "the build finished before a worker could be killed"
    _, stderr = build.communicate(timeout=900)
    assert build.returncode in (0, 1), stderr[-3000:]
    assert killed not in _workers()  # that process is gone; Ray started another
    for name in ("data.parquet", "candidates.parquet", "judgments.parquet"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert _keys(tmp_path / "ray.sqlite") == _keys(tmp_path / "local.sqlite")  # the same requests, each once


def test_an_unreachable_cluster_is_one_line(tmp_path):
    done = run_cli("build", _spec(tmp_path, "none.sqlite"), "--output", tmp_path / "out", "--ray",
                   "--ray-address", f"127.0.0.1:{_free_port()}")
    assert done.returncode == 2 and done.stderr.startswith("error: ray") and len(done.stderr.splitlines()) == 1
