"""`align train` over several processes: two processes on this CPU (torchrun, gloo), and the multi-machine
launch command. The batch and red-flag figures count every process's pairs; only the first process writes."""

import json
import math
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.align_fixtures import stamped_pairs, tiny_model  # noqa: F401  (fixtures)
from tests.conftest import ROOT


@pytest.mark.slow
def test_two_processes_train_as_one_run_with_figures_for_both(stamped_pairs, tiny_model, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "prefdata.align.cli", "train", "--method", "dpo", "--profile", "cpu", "--model", str(tiny_model),
         "--data", str(stamped_pairs), "--output", str(out), "--max-steps", "3", "--batch-size", "2",
         "--max-length", "256", "--eval-fraction", "0.2", "--eval-steps", "2"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    # 2 pairs on each of 2 processes per step; the red flags count the same 4 pairs behind each logged figure
    assert summary["batch"] == {"per_device": 2, "accumulation": 1, "processes": 2, "pairs_per_step": 4,
                                "pairs_per_log": 4}
    assert summary["steps"] == 3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r and "final" not in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3]  # one line per log: the second process writes none
    # the trainer itself went through 4 pairs a step: an epoch is ceil(examples / 4) steps (one process: / 2)
    assert train_rows[-1]["epoch"] == pytest.approx(3 / math.ceil(summary["train_examples"] / 4), rel=1e-6)
    assert all(r["rewards/accuracies"] * 4 == round(r["rewards/accuracies"] * 4) for r in train_rows)
    assert summary["held_out"] and (out / "model" / "adapter_config.json").is_file()
    assert done.stdout.count("steps, train loss") == 1  # one report, from the first process


def test_launch_over_two_machines_gives_accelerate_each_machines_rank(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    from prefdata.align.cli import app

    result = CliRunner().invoke(app, ["train", "--method", "dpo", "--profile", "full", "--model", "m", "--data", "d",
                                      "--output", str(tmp_path / "run"), "--launch", "zero3", "--num-machines", "2",
                                      "--machine-rank", "1", "--main-process-ip", "10.1.2.3",
                                      "--num-processes", "16", "--dry-run"])
    assert result.exit_code == 0, result.output
    words = result.output.split()
    start = words.index("accelerate.commands.launch") + 1
    args = launch_command_parser().parse_args(words[start:])  # accelerate's own parser reads it
    assert (args.num_machines, args.machine_rank, args.main_process_ip, args.main_process_port,
            args.num_processes) == (2, 1, "10.1.2.3", 29500, 16)
    assert args.config_file.endswith("zero3.yaml") and args.training_script == "prefdata.align.cli"
    written = (tmp_path / "run" / "launch_config.yaml").read_text()
    assert "machine_rank" not in written and "main_process_ip" not in written  # each process trains, not launches


@pytest.mark.parametrize("extra, says", [(["--num-machines", "2"], "main_process_ip"),
                                         (["--num-machines", "2", "--main-process-ip", "h", "--machine-rank", "2"],
                                          "machine_rank 2 is not below num_machines 2")])
def test_bad_machine_settings_are_one_line(tmp_path, extra, says):
    done = subprocess.run([sys.executable, "-m", "prefdata.align.cli", "train", "--method", "dpo", "--profile",
                           "full", "--model", "m", "--data", "d", "--output", str(tmp_path), "--launch", "fsdp",
                           *extra, "--dry-run"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1
