"""align without training: config and defaults, TRL settings per method and profile, hardware refusals,
launch configs, data guards (stamp, held-out split, KTO unpairing) and the red-flag rules."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from prefdata.align.cli import app
from prefdata.align.config import TrainConfig, load_config
from prefdata.errors import PrefdataError
from tests.align_fixtures import stamped_kto, stamped_pairs, tiny_model  # noqa: F401  (fixtures)

NO_GPU = {"torch": "x", "cuda": False, "gpus": [], "cpu_cores": 2}
ONE_GPU = {"torch": "x", "cuda": True, "gpus": [{"name": "H100", "memory_gib": 80.0, "bf16": True}], "cpu_cores": 16}


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def base(**kw) -> TrainConfig:
    return TrainConfig(model="m", data="d", output="o", **kw)


def test_method_defaults_are_the_published_ones():
    assert base(method="dpo").resolved().beta == 0.1
    simpo = base(method="simpo").resolved()
    assert (simpo.beta, simpo.simpo_gamma) == (2.0, 1.0)
    kto = base(method="kto").resolved()
    assert (kto.desirable_weight, kto.undesirable_weight) == (1.0, 1.0)
    assert base(method="orpo").resolved().beta == 0.1
    assert base(method="dpo", profile="full").resolved().learning_rate == 5e-7
    assert base(method="dpo", profile="cpu").resolved().learning_rate == pytest.approx(5e-6)
    assert base(method="dpo", beta=0.3).resolved().beta == 0.3  # a given knob is kept
    assert base(profile="qlora").resolved().lora_r == 64
    assert base(profile="full").resolved().lora_r is None


def test_yaml_config_and_flags(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("method: kto\nprofile: cpu\nmodel: m\ndata: d\noutput: o\nbeta: 0.2\n")
    got = load_config(cfg, {"beta": 0.5, "max_steps": 3, "method": None})
    assert (got.method, got.beta, got.max_steps) == ("kto", 0.5, 3)
    cfg.write_text("method: kto\nmodel: m\ndata: d\noutput: o\n\nbeta: -1\n")
    with pytest.raises(PrefdataError, match=r"run.yaml:6: beta: Input should be greater than 0"):
        load_config(cfg, {})
    cfg.write_text("method: rlhf\nmodel: m\ndata: d\noutput: o\n")
    with pytest.raises(PrefdataError, match=r"run.yaml:1: method"):
        load_config(cfg, {})
    with pytest.raises(PrefdataError, match=r"--model: Field required"):
        load_config(None, {"data": "d", "output": "o"})


@pytest.mark.parametrize("method, trainer_config, expect", [
    ("dpo", "DPOConfig", {"loss_type": ["sigmoid"], "beta": 0.1}),
    ("ipo", "DPOConfig", {"loss_type": ["ipo"]}),
    ("kto", "KTOConfig", {"desirable_weight": 1.0, "undesirable_weight": 1.0}),
    ("orpo", "ORPOConfig", {"beta": 0.1}),
    ("simpo", "CPOConfig", {"loss_type": "simpo", "simpo_gamma": 1.0, "cpo_alpha": 0.0, "beta": 2.0}),
])
def test_trl_config_per_method(tmp_path, method, trainer_config, expect):
    from prefdata.align.train import trl_config

    config = base(method=method, profile="cpu", max_steps=2).resolved()
    args = trl_config(config, NO_GPU, tmp_path, eval_rows=4, train_rows=20)
    assert type(args).__name__ == trainer_config
    for key, value in expect.items():
        assert getattr(args, key) == value, key
    # the cpu profile overrides TRL's bf16 + gradient-checkpointing defaults (12x slower on this CPU)
    assert args.bf16 is False and args.gradient_checkpointing is False and args.use_cpu is True
    assert args.eval_strategy == "steps" and args.eval_on_start is True


def test_gpu_profiles_settings(tmp_path):
    from prefdata.align.profiles import lora_config, quantization, training_args

    full = training_args("full", ONE_GPU)
    assert full["bf16"] is True and True in {full.get("activation_checkpointing"), full.get("gradient_checkpointing")}
    qlora = training_args("qlora", ONE_GPU)
    assert qlora["optim"].startswith("paged_adamw")
    quant = quantization("qlora", ONE_GPU)
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_use_double_quant
    import torch

    assert quant.bnb_4bit_compute_dtype == torch.bfloat16
    lora = lora_config(base(profile="qlora").resolved())
    assert lora.r == 64 and lora.target_modules == "all-linear"
    assert lora_config(base(profile="full").resolved()) is None


def test_trl_configs_raise_no_checkpointing_future_warning(tmp_path):
    """transformers 5 warns (FutureWarning, twice per align train) when only `gradient_checkpointing` is set,
    which TRL's configs do by default; the profiles set the name this transformers knows."""
    import warnings

    from prefdata.align.train import trl_config

    from prefdata.align.profiles import training_args

    config = base(method="dpo", profile="cpu", max_steps=2).resolved()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = trl_config(config, NO_GPU, tmp_path, eval_rows=4, train_rows=20)
    assert not [w for w in caught if "checkpointing" in str(w.message)], [str(w.message) for w in caught]
    assert args.gradient_checkpointing is False  # the old name still reads the setting
    lora = training_args("lora", ONE_GPU)
    assert lora.get("activation_checkpointing_kwargs", lora.get("gradient_checkpointing_kwargs")) == \
        {"use_reentrant": False}


@pytest.mark.skipif(has_cuda(), reason="this machine has a GPU: qlora is allowed")
def test_qlora_refused_without_gpu(stamped_pairs, tmp_path):  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "prefdata.align.cli", "train", "--method", "dpo", "--profile", "qlora",
                           "--model", "m", "--data", str(stamped_pairs), "--output", str(tmp_path / "run")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "qlora needs a CUDA GPU" in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


def test_profile_checks():
    from prefdata.align.profiles import check_profile

    with pytest.raises(PrefdataError, match="qlora needs a CUDA GPU"):
        check_profile("qlora", NO_GPU)
    with pytest.raises(PrefdataError, match="--launch zero3"):
        check_profile("full", NO_GPU, "zero3")
    assert check_profile("cpu", NO_GPU) == []
    assert "12x slower" in check_profile("lora", NO_GPU)[0]


@pytest.mark.parametrize("name, kind", [("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED"), ("fsdp", "FSDP")])
def test_launch_configs_ship_and_parse(name, kind):
    from prefdata.align.launch import config_path, load_launch_config

    data = load_launch_config(name)
    assert data["distributed_type"] == kind
    if kind == "DEEPSPEED":
        assert data["deepspeed_config"]["zero_stage"] == int(name[-1])
    else:
        assert data["fsdp_config"]["fsdp_version"] == 2
    assert config_path(name).parent.name == "launch_configs"
    # accelerate itself can read it (its own config loader)
    from accelerate.commands.config.config_args import load_config_from_file

    assert load_config_from_file(str(config_path(name))).distributed_type.name == kind


def test_launch_config_missing_key_is_reported(tmp_path, monkeypatch):
    from prefdata.align import launch

    broken = tmp_path / "launch_configs"
    broken.mkdir()
    (broken / "zero2.yaml").write_text("distributed_type: DEEPSPEED\ndeepspeed_config: {}\n")
    monkeypatch.setattr(launch, "config_path", lambda name: broken / "zero2.yaml")
    with pytest.raises(PrefdataError, match="deepspeed_config.zero_stage"):
        launch.load_launch_config("zero2")


def test_launch_dry_run_prints_accelerate_command(tmp_path):
    result = CliRunner().invoke(app, ["train", "--method", "dpo", "--profile", "full", "--model", "m", "--data", "d",
                                      "--output", str(tmp_path / "run"), "--launch", "zero3", "--num-processes", "4",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "accelerate.commands.launch --config_file" in result.output and "zero3.yaml" in result.output
    assert "--num_processes 4 -m prefdata.align.cli train" in result.output
    written = yaml.safe_load((tmp_path / "run" / "launch_config.yaml").read_text())
    assert written["method"] == "dpo" and "launch" not in written


@pytest.mark.skipif(has_cuda(), reason="this machine has a GPU")
def test_launch_refused_without_gpu(tmp_path):
    result = CliRunner().invoke(app, ["train", "--profile", "full", "--model", "m", "--data", "d",
                                      "--output", str(tmp_path), "--launch", "fsdp"])
    assert result.exit_code == 2 and "--launch fsdp" in result.output


def copy_stamped(src, dst, stamp_edit=None):
    """The data under a new name with its stamp (the stamp keys files by name)."""
    dst.write_bytes(src.read_bytes())
    stamp = json.loads((src.parent / (src.name + ".validation.json")).read_text())
    stamp["files"] = {dst.name: stamp["files"][src.name]}
    if stamp_edit:
        stamp_edit(stamp)
    (dst.parent / (dst.name + ".validation.json")).write_text(json.dumps(stamp))
    return dst


def _cli_train(data, out, *extra):
    return CliRunner().invoke(app, ["train", "--method", "dpo", "--profile", "cpu", "--model", "m", "--data",
                                    str(data), "--output", str(out), *extra])


def test_unstamped_and_stale_data_refused(stamped_pairs, tmp_path):  # noqa: F811
    plain = tmp_path / "plain.parquet"
    plain.write_bytes(stamped_pairs.read_bytes())  # same data, no stamp beside it
    result = _cli_train(plain, tmp_path / "a")
    assert result.exit_code == 2
    assert "not validated" in result.output and "--skip-validation" in result.output
    stale = copy_stamped(stamped_pairs, tmp_path / "stale.parquet")
    pl.read_parquet(stale).head(10).write_parquet(stale)  # changed after validation
    result = _cli_train(stale, tmp_path / "b")
    assert result.exit_code == 2 and "changed since validation" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_failed_validation_refused(stamped_pairs, tmp_path):  # noqa: F811
    def fail(stamp):
        stamp["passed"] = False
        stamp["checks"][0].update(severity="error", passed=False)

    failed = copy_stamped(stamped_pairs, tmp_path / "failed.parquet", fail)
    result = _cli_train(failed, tmp_path / "c")
    assert result.exit_code == 2 and "validation failed" in result.output


def test_bad_settings_are_one_line_errors(stamped_pairs, tiny_model, tmp_path):  # noqa: F811
    cfg = tmp_path / "run.yaml"
    base = f"profile: cpu\nmodel: {tiny_model}\ndata: {stamped_pairs}\noutput: {tmp_path / 'o'}\nmax_steps: 1\n"
    cfg.write_text("method: rlhf\n" + base)  # the file's line, although the command line could set --method
    result = CliRunner().invoke(app, ["train", str(cfg)])
    assert result.exit_code == 2 and "run.yaml:1: method:" in result.output
    cfg.write_text("method: dpo\n" + base + "trl: {no_such_setting: 1}\n")
    result = CliRunner().invoke(app, ["train", str(cfg)])
    assert result.exit_code == 2 and "trl: DPOConfig refused the settings" in result.output
    cfg.write_text("method: dpo\n" + base + f"chat_template: {tmp_path / 'missing.jinja'}\n")
    result = CliRunner().invoke(app, ["train", str(cfg)])
    assert result.exit_code == 2 and "chat_template: cannot read" in result.output
    cfg.write_text("method: dpo\n" + base)
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--beta", "-1"])
    assert result.exit_code == 2 and "--beta: Input should be greater than 0" in result.output
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "nowhere"), "--data", str(stamped_pairs)])
    assert result.exit_code == 2 and "no such checkpoint folder" in result.output
    (tmp_path / "o").mkdir(exist_ok=True)  # a folder, but no model in it
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "o"), "--data", str(stamped_pairs),
                                      "--reference", str(tiny_model)])
    assert result.exit_code == 2 and "cannot load the model" in result.output


def test_unpaired_data_refused_for_pair_methods(stamped_kto, tmp_path):  # noqa: F811
    result = _cli_train(stamped_kto, tmp_path / "d")
    assert result.exit_code == 2 and "use --method kto" in result.output


def test_held_out_split_is_by_prompt(stamped_pairs):  # noqa: F811
    from prefdata.align.data import hold_out
    from prefdata.io import read_dataset

    frame = read_dataset(stamped_pairs).frame
    doubled = pl.concat([frame, frame.with_columns(pl.col("pair_id") + "x")])  # every prompt twice
    train, held = hold_out(doubled, 0.25, seed=1)
    assert train.height + held.height == doubled.height and held.height > 0
    assert set(train["prompt_id"]).isdisjoint(held["prompt_id"])
    with_split = frame.with_columns(split=pl.when(pl.int_range(pl.len()) < 5).then(pl.lit("test"))
                                    .otherwise(pl.lit("train")))
    train, held = hold_out(with_split, 0.5, seed=1)
    assert held.height == 5 and (held["split"] == "test").all()


def test_kto_on_pairs_unpairs_and_shuffles(stamped_pairs):  # noqa: F811
    from prefdata.align.data import kto_balance, to_dataset
    from prefdata.io import read_dataset

    frame = read_dataset(stamped_pairs).frame
    data = to_dataset(frame, "pairwise", "kto", seed=0)
    assert len(data) == 2 * frame.height and set(data.column_names) >= {"prompt", "completion", "label"}
    first = data["label"][:8]
    assert 0 < sum(first) < 8  # mixed labels early on, not a block of desirable then undesirable
    assert kto_balance(data, 1.0, 1.0) is None
    assert "outside" in kto_balance(data, 1.0, 2.0)


def test_pad_token_and_chat_template(tiny_model, tmp_path):  # noqa: F811
    from transformers import AutoTokenizer

    from prefdata.align.tokenizer import prepare_tokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    template = tok.chat_template
    tok.chat_template = None
    tok.pad_token = None
    bare = tmp_path / "bare"
    tok.save_pretrained(str(bare))
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(PrefdataError, match="no chat template"):
        prepare_tokenizer(str(bare))
    jinja = tmp_path / "t.jinja"
    jinja.write_text(template)
    ready, notes = prepare_tokenizer(str(bare), str(jinja))
    assert ready.chat_template == template and ready.pad_token == ready.eos_token
    assert any("pad token" in n for n in notes)


def test_truncation_figures_warn(stamped_pairs, tiny_model):  # noqa: F811
    from prefdata.align.tokenizer import prepare_tokenizer, truncation
    from prefdata.io import read_dataset

    frame = read_dataset(stamped_pairs).frame
    tok, _ = prepare_tokenizer(str(tiny_model))
    short = truncation(frame, "pairwise", tok, 16)
    assert short["truncated_share"] > 0.5 and "will be truncated" in short["warning"]
    roomy = truncation(frame, "pairwise", tok, 4096)
    assert roomy["truncated_share"] == 0 and "warning" not in roomy


def _run(flags, logs, max_steps):
    for step, entry in enumerate(logs, start=1):
        flags.update(step, max_steps, entry)
    return [f["flag"] for f in flags.flags]


def test_red_flags_on_planted_runs():
    from prefdata.align.redflags import RedFlags

    healthy = [{"rewards/accuracies": 0.5 + i / 50, "rewards/chosen": 0.01 * i, "rewards/margins": 0.02 * i,
                "logps/rejected": -100 - i} for i in range(20)]
    assert _run(RedFlags(), healthy, 20) == []
    overfit = [{"rewards/accuracies": 1.0, "rewards/margins": 0.5 * i} for i in range(1, 21)]
    assert _run(RedFlags(pairs_per_log=16), overfit, 20) == ["overfitting"]
    # a batch or two of 4 pairs all ranked right is chance: too few pairs in the first 10% to call it
    lucky = [{"rewards/accuracies": a, "rewards/margins": 0.1 * i} for i, a in enumerate([0.5, 1.0, 1.0, 0.75] * 12)]
    assert "overfitting" not in _run(RedFlags(pairs_per_log=4), lucky, 48)
    assert "overfitting" in _run(RedFlags(pairs_per_log=4), [{"rewards/accuracies": 1.0}] * 100, 100)
    collapse = [{"logps/rejected": -100 - 10 * i, "rewards/margins": i} for i in range(20)]
    assert "rejected_collapse" in _run(RedFlags(), collapse, 20)
    falling = [{"rewards/chosen": 0.1 - 0.05 * i, "rewards/margins": i} for i in range(10)]
    assert "chosen_rewards_falling" in _run(RedFlags(), falling, 10)
    flat = [{"rewards/margins": 0.001} for _ in range(20)]
    assert _run(RedFlags(), flat, 20) == ["flat_margins"]
    assert _run(RedFlags(), [{"eval_rewards/accuracies": 1.0}] * 5, 20) == []  # held-out entries are not training


def test_red_flag_callback_stops_early():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from prefdata.align.redflags import RedFlags, callback

    state = TrainerState()
    state.max_steps, state.global_step = 100, 1
    control = TrainerControl()
    flags = RedFlags()
    args = TrainingArguments(output_dir="/tmp/unused", use_cpu=True, report_to=[])
    callback(flags, early_stop=True).on_log(args, state, control, logs={"rewards/accuracies": 1.0})
    assert control.should_training_stop and flags.flags[0]["flag"] == "overfitting"
    control = TrainerControl()
    callback(RedFlags(), early_stop=False).on_log(args, state, control, logs={"rewards/accuracies": 1.0})
    assert not control.should_training_stop


def test_the_compare_example_config_loads_and_its_figures_come_from_the_last_evaluation():
    """examples/compare_hh/train.yaml runs without a closing evaluation: align compare then reads each run's
    figures from the trainer's evaluation at its last step (and never from an earlier one)."""
    from conftest import ROOT
    from prefdata.align.compare import _last_eval

    config = load_config(ROOT / "examples" / "compare_hh" / "train.yaml",
                         {"model": "m", "data": "(each variant's file)", "output": "out"})
    assert config.final_eval is False and config.max_steps % config.eval_steps == 0  # the last step is evaluated
    history = [{"step": 12, "eval_rewards/accuracies": 0.5}, {"step": 24, "eval_rewards/accuracies": 0.75}]
    assert _last_eval({"steps": 24, "history": history})["eval_rewards/accuracies"] == 0.75
    assert _last_eval({"steps": 30, "history": history}) == {}  # no evaluation at the last step: no figure
