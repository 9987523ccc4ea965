"""prefdata: build, curate and validate LLM preference datasets.

    import prefdata
    result = prefdata.read_dataset("pairs.jsonl")      # any supported format
    prefdata.write_table(result.frame, "pairs.parquet")
    prefdata.build("examples/quickstart/spec.yaml")    # the whole flow

Names are imported on first use so that `import prefdata` (and the CLI's --help) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "read_dataset": "prefdata.io.reader",
    "ReadResult": "prefdata.io.reader",
    "write_table": "prefdata.io.writers",
    "dataset_stats": "prefdata.stats",
    "build": "prefdata.build",
    "load_spec": "prefdata.spec",
    "Spec": "prefdata.spec",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'prefdata' has no attribute {name!r}")


__all__ = sorted(_API)
