"""What this machine can train on, for choosing and refusing profiles."""

from __future__ import annotations

from typing import Any


def detect() -> dict[str, Any]:
    """Torch version, CUDA devices and their memory; no CUDA means only the cpu profile can run."""
    import os

    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda": False, "gpus": [], "cpu_cores": os.cpu_count()}
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                         "bf16": torch.cuda.is_bf16_supported()})
    return {"torch": torch.__version__, "cuda": bool(gpus), "gpus": gpus, "cpu_cores": os.cpu_count()}
