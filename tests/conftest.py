import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker (one per core) gets one thread for torch and BLAS, inherited by the builds it starts:
    # two workers with a thread per core each oversubscribe the cores, and a model build then runs 6x slower.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
HH = SHARED / "hh-rlhf" / "harmless-base_test.jsonl.gz"
DPO_DEMO = SHARED / "llamafactory" / "dpo_en_demo.json"
KTO_DEMO = SHARED / "llamafactory" / "kto_en_demo.json"


def hh_rows() -> list[dict]:
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def json_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def run_cli(*args: str, check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `prefdata` command in a subprocess."""
    done = subprocess.run([sys.executable, "-m", "prefdata", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"prefdata {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The embedded model folder (converted once per PREFDATA_HOME)."""
    from prefdata.backends.embedded import pull

    return pull()
