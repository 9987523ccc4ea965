"""Multi-GPU runs: the shipped accelerate configs (DeepSpeed ZeRO-2, ZeRO-3, FSDP) and the
`accelerate launch` command that re-runs `align train` in every process."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from prefdata.errors import PrefdataError

CONFIGS = {"zero2": "zero2.yaml", "zero3": "zero3.yaml", "fsdp": "fsdp.yaml"}
REQUIRED = {"compute_environment", "distributed_type", "mixed_precision", "num_machines", "num_processes",
            "machine_rank", "use_cpu"}
REQUIRED_BY_TYPE = {"DEEPSPEED": ("deepspeed_config", {"zero_stage"}),
                    "FSDP": ("fsdp_config", {"fsdp_auto_wrap_policy", "fsdp_state_dict_type", "fsdp_version"})}


def config_path(name: str) -> Path:
    if name not in CONFIGS:
        raise PrefdataError(f"--launch {name}: unknown (known: {', '.join(CONFIGS)})")
    return Path(str(resources.files("prefdata.align") / "launch_configs" / CONFIGS[name]))


def load_launch_config(name: str) -> dict[str, Any]:
    """The config, checked for the keys accelerate needs for its distributed type."""
    path = config_path(name)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = REQUIRED - set(data)
    kind = data.get("distributed_type")
    if kind in REQUIRED_BY_TYPE:
        section, keys = REQUIRED_BY_TYPE[kind]
        missing |= {f"{section}.{k}" for k in keys - set(data.get(section) or {})}
    else:
        missing.add("distributed_type (DEEPSPEED or FSDP)")
    if missing:
        raise PrefdataError(f"{path}: missing {', '.join(sorted(missing))}")
    return data


def command(config: Any, config_file: Path, processes: int) -> list[str]:
    """`accelerate launch --config_file ... -m align.cli train RUN_CONFIG` (without --launch: one run per process).
    Over several machines, each runs this with its own machine rank; `processes` counts all of them."""
    load_launch_config(config.launch)
    machines = []
    if config.num_machines > 1:
        machines = ["--num_machines", str(config.num_machines), "--machine_rank", str(config.machine_rank),
                    "--main_process_ip", config.main_process_ip, "--main_process_port", str(config.main_process_port)]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path(config.launch)),
            "--num_processes", str(processes), *machines, "-m", "prefdata.align.cli", "train", str(config_file)]


def launch(config: Any, gpus: int, dry_run: bool = False) -> list[str]:
    """Write the run's config (without `launch`) and start accelerate; returns the command."""
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    run_file = output / "launch_config.yaml"
    body = config.model_dump(exclude={"launch", "num_processes", "num_machines", "machine_rank", "main_process_ip",
                                      "main_process_port"})
    run_file.write_text(yaml.safe_dump(json.loads(json.dumps(body)), sort_keys=False), encoding="utf-8")
    cmd = command(config, run_file, config.num_processes or gpus * config.num_machines)
    if not dry_run:
        code = subprocess.call(cmd)
        if code:
            raise PrefdataError(f"accelerate launch exited {code}: {shlex.join(cmd)}")
    return cmd
