"""The curation commands' options are generated from the steps' config models (prefdata.commands.options)."""

from typing import Literal, Optional

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from prefdata.commands.options import Configs, Group, with_options
from prefdata.curate.config import (STEPS, BalanceConfig, DecontaminateConfig, DedupeConfig, FilterConfig,
                                    NearDedupeConfig, PiiConfig, SemanticDedupeConfig, SplitConfig, Step)
from prefdata.errors import PrefdataError

from conftest import run_cli


class Toy(Step):
    step: Literal["toy"] = "toy"
    mode: Literal["fast", "exact"] = Field("exact", description="How.")
    limit: Optional[int] = Field(None, ge=1, description="At most this many.")
    ratio: float = Field(0.5, gt=0, le=1, description="A share.")
    strict: bool = Field(True, description="Refuse doubt.")
    names: list[str] = Field(["a", "b"], description="Names.")
    files: list[str] = Field(default_factory=list, description="Paths.")


def _app(*groups: Group, seen: list) -> typer.Typer:
    app = typer.Typer()

    @with_options(*groups)
    def command(source: str = typer.Argument(...), loud: bool = typer.Option(False, "--loud"),
                configs: Configs = None) -> None:
        seen.append((source, loud, [configs.make(g.config) for g in groups]))

    app.command("run")(command)
    app.command("other")(lambda: None)
    return app


def _invoke(app, *args):
    return CliRunner().invoke(app, ["run", *args])


def test_fields_become_typed_options_with_the_models_defaults():
    seen = []
    app = _app(Group(Toy, paths=("files",)), seen=seen)
    done = _invoke(app, "in.jsonl")
    assert done.exit_code == 0, done.output
    assert seen == [("in.jsonl", False, [Toy()])]
    done = _invoke(app, "x", "--mode", "fast", "--limit", "3", "--ratio", "0.25", "--no-strict", "--names", "c,d",
                   "--names", "e", "--files", "a,b.jsonl", "--files", "c.jsonl", "--loud")
    assert done.exit_code == 0, done.output
    assert seen[-1] == ("x", True, [Toy(mode="fast", limit=3, ratio=0.25, strict=False, names=["c", "d", "e"],
                                        files=["a,b.jsonl", "c.jsonl"])])  # paths are never split at commas


def test_help_is_the_fields_description():
    app = _app(Group(Toy, prefix="toy", when="--loud"), seen=[])
    done = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert done.exit_code == 0
    for option, help_ in (("--toy-mode", "How. (with --loud)"), ("--toy-limit", "At most this many."),
                          ("--toy-strict", "Refuse doubt.")):
        line = next(line for line in done.output.splitlines() if option in line)
        assert help_ in line


def test_a_value_the_type_refuses_and_one_the_model_refuses():
    seen = []
    app = _app(Group(Toy), seen=seen)
    assert _invoke(app, "x", "--mode", "slow").exit_code == 2  # not a choice: the CLI's own usage error
    assert _invoke(app, "x", "--limit", "many").exit_code == 2
    done = _invoke(app, "x", "--ratio", "2")  # a float, but out of the model's bounds
    assert isinstance(done.exception, PrefdataError) and str(done.exception).startswith("--ratio: ")
    done = _invoke(app, "x", "--ratio", "nan")  # the steps forbid NaN: a NaN bound would keep every row
    assert isinstance(done.exception, PrefdataError) and "--ratio" in str(done.exception)
    assert seen == []


def test_a_shared_option_sets_every_config_that_has_the_field():
    seen = []
    app = _app(Group(DedupeConfig), Group(NearDedupeConfig), Group(SemanticDedupeConfig, prefix="semantic",
                                                                   names={"keep": "--keep"}), seen=seen)
    done = _invoke(app, "x", "--keep", "highest_margin", "--threshold", "0.7", "--semantic-threshold", "0.95")
    assert done.exit_code == 0, done.output
    exact, near, semantic = seen[-1][2]
    assert exact.keep == near.keep == semantic.keep == "highest_margin"
    assert (near.threshold, semantic.threshold) == (0.7, 0.95)


def test_a_clash_with_the_commands_own_parameter_is_refused():
    with pytest.raises(TypeError, match="clash"):
        @with_options(Group(Toy))
        def command(mode: str = typer.Option("x"), configs: Configs = None) -> None:
            pass


@pytest.mark.parametrize("config", [c for c in STEPS if c.__name__ not in ("HumanReviewConfig",)])
def test_every_steps_defaults_come_through_unchanged(config):
    """Each curation step's options, given nothing, make the config the spec's bare `- step` makes."""
    seen = []
    app = _app(Group(config), seen=seen)
    required = {"eval_sets": ["--eval-sets", "evals.jsonl"]}
    extra = [arg for name, args in required.items() if name in config.model_fields for arg in args]
    done = _invoke(app, "x", *extra)
    assert done.exit_code == 0, done.output
    expected = config(**({"eval_sets": ["evals.jsonl"]} if extra else {}))
    assert seen[-1][2] == [expected]


@pytest.mark.parametrize("command, configs", [
    ("dedupe", (DedupeConfig, NearDedupeConfig, SemanticDedupeConfig)),
    ("filter", (FilterConfig, DecontaminateConfig)), ("pii", (PiiConfig,)),
    ("length-bias", (BalanceConfig,)), ("split", (SplitConfig,))])
def test_every_field_of_a_commands_steps_is_an_option(command, configs):
    done = run_cli(command, "--help", env={"COLUMNS": "200"}, check=True)
    options = {word.rstrip(",") for word in done.stdout.split() if word.startswith("--")}
    for config in configs:
        for name in config.model_fields:
            if name == "step":
                continue
            if name == "eval_sets":  # named for what it does: --decontaminate FILE
                assert "--decontaminate" in options
                continue
            assert any(option.endswith("-" + name.replace("_", "-")) for option in options), (command, name)


def test_align_train_has_an_option_for_every_field_a_command_line_can_spell(tmp_path):
    """`align train` overrides a config file's fields with options generated from TrainConfig."""
    import json

    from prefdata.align.cli import app
    from prefdata.align.config import TrainConfig

    done = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    options = {word.rstrip(",") for line in done.output.splitlines() for word in line.replace(",", " ").split()
               if word.startswith("--")}
    spelled = set(TrainConfig.model_fields) - {"trl", "target_modules"}  # a mapping and a string-or-list
    assert {"--" + name.replace("_", "-") for name in spelled} <= options
    assert {"--lr", "--adapter", "--no-final-eval"} <= options
    config = tmp_path / "train.yaml"
    config.write_text("model: m\ndata: d\noutput: out\nlearning_rate: 0.1\nlora_dropout: 0.2\nmerge: true\n"
                      "trl: {warmup_ratio: 0.1}\n")
    done = CliRunner().invoke(app, ["train", str(config), "--lr", "0.5", "--adapter", "--no-final-eval",
                                    "--method", "ipo", "--skip-validation", "--dry-run"])
    assert done.exit_code == 0, done.output
    resolved = json.loads(done.output)
    assert (resolved["learning_rate"], resolved["merge"], resolved["final_eval"], resolved["method"]) == \
        (0.5, False, False, "ipo")  # given options win
    assert resolved["lora_dropout"] == 0.2 and resolved["trl"] == {"warmup_ratio": 0.1}  # the file's, untouched
    done = CliRunner().invoke(app, ["train", str(config), "--method", "sft", "--dry-run"])
    assert done.exit_code == 2  # not one of the registry's methods: a usage error, not a traceback
