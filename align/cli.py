"""The `align` command: train, eval, sweep, hardware. A thin skin over `align.train`, `align.evaluate`,
`align.sweep`; heavy libraries load inside the commands, so `align --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from prefdata import strict_json
from prefdata.align.config import TrainConfig
from prefdata.cli_run import run, version_callback
from prefdata.commands.options import Configs, Group, with_options
from prefdata.errors import PrefdataError

app = typer.Typer(help="Train DPO / KTO / ORPO / SimPO / IPO on validated prefdata datasets (TRL).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("align").setLevel(logging.INFO)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=version_callback("align"),
                                       help="Print the version and exit."),
          verbose: bool = typer.Option(False, "--verbose", help="Let libraries print their progress bars and "
                                       "notes.")) -> None:
    """align: training on prefdata datasets."""
    from prefdata.noise import configure

    configure(verbose)


@app.command()
def hardware(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Report the accelerators this machine has (which training profiles can run here)."""
    from prefdata.align.hardware import detect

    found = detect()
    if as_json:
        typer.echo(strict_json.dumps(found))
        return
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in found["gpus"]) or "none"
    typer.echo(f"torch {found['torch'] or 'not installed'}; GPUs: {gpus}; CPU cores: {found['cpu_cores']}")


TRAIN_OPTIONS = Group(TrainConfig, overrides=True, names={"merge": "--merge/--adapter"},
                      aliases={"learning_rate": ("--lr",)})  # every field a command line can spell


@app.command()
@with_options(TRAIN_OPTIONS)
def train(
    config_file: Optional[Path] = typer.Argument(None, help="YAML run config (command-line options override it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve the config and check the profile; print it."),
    configs: Configs = None,
) -> None:
    """Train a preference method on validated data (refuses unstamped or stale data). Each option overrides the
    config file's field of the same name; fields a command line cannot spell (trl, target_modules) are set there."""
    from prefdata.align.config import load_config

    overrides = configs.given(TrainConfig)
    try:
        config = load_config(config_file, overrides)
        if config.launch:
            _launch(config, dry_run)
            return
        from prefdata.align.train import refuse_if_unrunnable

        refuse_if_unrunnable(config)
        if dry_run:
            typer.echo(config.resolved().model_dump_json(indent=2))
            return
        _logging()
        from prefdata.align.train import train as run

        summary = run(config)
    except PrefdataError as exc:
        _fail(exc)
    _print_summary(summary, config.output)


def _launch(config: Any, dry_run: bool) -> None:
    import shlex

    from prefdata.align.hardware import detect
    from prefdata.align.launch import launch
    from prefdata.align.profiles import check_profile

    found = detect()
    if not dry_run:
        check_profile(config.profile, found, config.launch)
    cmd = launch(config.resolved(), max(1, len(found["gpus"])), dry_run=dry_run)
    typer.echo(shlex.join(cmd))


def _f(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def _print_summary(summary: dict[str, Any], output: str) -> None:
    if "rank" in summary:  # another process of a multi-process run: the first one reports
        return
    held = summary.get("held_out") or {}
    typer.echo(f"{summary['method']} / {summary['profile']}: {summary['steps']} steps, train loss "
               f"{_f(summary['train_loss'])}; saved {summary['saved']} to {output}/model")
    for row in summary.get("history") or []:
        acc = row.get("eval_rewards/accuracies", row.get("eval_accuracy"))  # eval_accuracy: a reward model's
        if acc is not None:
            typer.echo(f"  step {row['step']}: held-out reward accuracy {_f(acc, 3)}, margin "
                       f"{_f(row.get('eval_rewards/margins', row.get('eval_margin')))}")
    if held and summary["method"] == "reward":
        typer.echo(f"held-out accuracy {_f(held['accuracy'], 3)} ({held['correct']} of {held['pairs']} pairs: the "
                   f"chosen answer gets the higher reward), margin {_f(held['margin'])}")
    elif held:
        typer.echo(f"held-out vs reference: reward accuracy {_f(held.get('eval_rewards/accuracies'), 3)}, "
                   f"margin {_f(held.get('eval_rewards/margins'))}")
    for flag in summary.get("red_flags") or []:
        typer.echo(f"red flag: {flag['flag']} at step {flag['step']}: {flag['message']}")
    if summary["stamp_state"] != "valid":
        typer.echo(f"WARNING: trained without a passing validation stamp ({summary['stamp_state']})")


def _judges(path: Optional[Path]) -> list[Any] | None:
    if path is None:
        return None
    from pydantic import ValidationError

    from prefdata.safe_yaml import line_of, load
    from prefdata.spec import JudgeSpec

    loaded = load(path, what="judges file")  # the bounded loader every user YAML goes through
    items = loaded.data if isinstance(loaded.data, list) else [loaded.data]
    judges = []
    for index, item in enumerate(items):
        try:
            judges.append(JudgeSpec.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ((index,) if isinstance(loaded.data, list) else ()) + tuple(err["loc"])
            raise PrefdataError(f"{path}:{line_of(loaded.node, loc)}: {'.'.join(map(str, loc))}: {err['msg']}") \
                from None
    return judges


@app.command("eval")
def eval_(
    checkpoint: Path = typer.Argument(..., help="Run folder, its model/ folder, or a checkpoint."),
    data: str = typer.Option(..., "--data", help="Dataset whose held-out split is evaluated."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference model (default: the run's base)."),
    win_rate: bool = typer.Option(False, "--win-rate", help="Also judge policy vs reference answers."),
    judges: Optional[Path] = typer.Option(None, "--judges", help="YAML list of judges (default: the embedded)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many held-out rows / prompts."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    skip_validation: bool = typer.Option(False, "--skip-validation"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Generate and judge again (no request cache)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Request cache file (default: prefdata's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Held-out reward accuracy and margins against the reference; with --win-rate, the judged win rate."""
    try:
        from prefdata.align.evaluate import evaluate_checkpoint

        _logging()
        result = evaluate_checkpoint(checkpoint, data, reference=reference, win=win_rate, judges=_judges(judges),
                                     limit=limit, max_new_tokens=max_new_tokens, skip_validation=skip_validation,
                                     max_length=max_length, no_cache=no_cache,
                                     cache_path=cache)
    except PrefdataError as exc:
        _fail(exc)
    if as_json:
        typer.echo(strict_json.dumps(result))
        return
    if "reward_model" in result:
        held = result["reward_model"]
        typer.echo(f"{held['pairs']} held-out pairs: accuracy {_f(held['accuracy'], 3)} ({held['correct']} with the "
                   f"chosen answer's reward higher), margin {_f(held['margin'])}")
        return
    reward = result.get("reward") or {}
    typer.echo(f"{result['held_out_rows']} held-out rows: reward accuracy "
               f"{_f(reward.get('eval_rewards/accuracies'), 3)}, margin {_f(reward.get('eval_rewards/margins'))}")
    if "win_rate" in result:
        w = result["win_rate"]
        typer.echo(f"win rate vs reference {w['win_rate']:.3f} ({w['wins']} wins, {w['losses']} losses, "
                   f"{w['ties']} ties over {w['prompts']} prompts; position consistency {w['position_consistency']})")


@app.command()
def sweep(
    config_file: Path = typer.Argument(..., help="YAML run config, the base of every run."),
    betas: str = typer.Option("0.05,0.1,0.3", "--beta", help="Comma-separated betas."),
    lrs: Optional[str] = typer.Option(None, "--lr", help="Comma-separated learning rates (default: the config's)."),
    output: Optional[str] = typer.Option(None, "--output", help="Sweep folder (default: the config's output)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    model: Optional[str] = typer.Option(None, "--model", help="Model (default: the config's)."),
) -> None:
    """Train once per (beta, learning rate) and print the held-out results table."""
    try:
        from prefdata.align.config import load_config
        from prefdata.align.sweep import run_sweep

        config = load_config(config_file, {"output": output, "max_steps": max_steps, "model": model})
        grid_b = [float(x) for x in betas.split(",") if x.strip()]
        grid_lr = [float(x) for x in lrs.split(",") if x.strip()] if lrs else [None]
    except ValueError as exc:
        _fail(PrefdataError(f"--beta/--lr: {exc}"))
    except PrefdataError as exc:
        _fail(exc)
    _logging()
    try:
        table = run_sweep(config, grid_b, grid_lr)
    except PrefdataError as exc:
        _fail(exc)
    typer.echo(table)


@app.command()
def iterate(
    spec: Path = typer.Argument(..., help="prefdata build spec: sources, generate (its backend is replaced by the "
                                "policy), judges, curation, validation."),
    rounds: int = typer.Option(..., "--rounds", min=1, max=100, help="On-policy rounds to run."),
    config_file: Path = typer.Option(..., "--train", help="align train YAML: method, profile, steps... (its data "
                                     "and output are set per round)."),
    output: str = typer.Option("iterate", "--output", help="Folder of the rounds (round-N/data, round-N/train)."),
    model: Optional[str] = typer.Option(None, "--model", help="Starting policy (default: the train config's)."),
    eval_data: Optional[str] = typer.Option(None, "--eval", help="A fixed validated set whose held-out split "
                                            "scores every round's model against the starting one."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", min=1, help="Score at most N held-out pairs."),
) -> None:
    """On-policy rounds: generate with the current policy, judge, curate, validate, train; again from the result."""
    try:
        from prefdata.align.config import load_config
        from prefdata.align.iterate import iterate as run_rounds, short

        config = load_config(config_file, {"model": model, "data": "(each round's data)", "output": output})
        _logging()
        records = run_rounds(spec, config, rounds, output, eval_data=eval_data, eval_limit=eval_limit)
    except PrefdataError as exc:
        _fail(exc)
    for r in records:
        held = r["held_out"]
        typer.echo(f"round {r['round']}: {r['pairs']} pairs ({short(r['fingerprint'])}), {r['steps']} steps, "
                   f"train loss {_f(r['train_loss'])}, held-out accuracy {_f(held.get('eval_rewards/accuracies'), 3)}"
                   + (" (reused)" if r["training_reused"] else ""))
    typer.echo(f"rounds recorded in {Path(output) / 'iterate.json'} and {Path(output) / 'README.md'}")


@app.command()
def compare(
    variants: list[str] = typer.Option(..., "--variant", help="NAME=PATH (a file or folder of pairs) or "
                                       "NAME=BASE+step:key=value,... (a curation of an earlier variant or a file, "
                                       "with the spec's step names); repeat, the first is the baseline."),
    held_out: str = typer.Option(..., "--eval", help="The held-out pairs every run is scored on."),
    output: str = typer.Option(..., "--output", help="Folder: data/, runs/, compare.json, README.md, compare.png."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="align train YAML (its data and output are "
                                               "set per run)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model (default: the config's)."),
    method: Optional[str] = typer.Option(None, "--method", help="dpo, ipo, orpo or simpo."),
    profile: Optional[str] = typer.Option(None, "--profile", help="qlora, lora, full or cpu."),
    max_steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer steps of every run (equal compute)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Held-out evaluation every N steps."),
    seeds: int = typer.Option(2, "--seeds", min=1, max=20, help="Runs per variant (seeds 0..N-1 added to the "
                              "config's)."),
    allow_overlap: bool = typer.Option(False, "--allow-overlap", help="Train even where held-out prompts are in "
                                       "a variant (said in the report; those runs are not stamped)."),
    win_rate: bool = typer.Option(False, "--win-rate", help="Also judge each run's answers to the held-out prompts "
                                  "against the base model's (both orders; answers and verdicts cached)."),
    judges: Optional[Path] = typer.Option(None, "--judges", help="YAML list of judges for --win-rate (default: the "
                                          "embedded)."),
    win_limit: Optional[int] = typer.Option(None, "--win-limit", min=1, help="--win-rate on at most this many "
                                            "held-out prompts."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1, max=4096, help="Longest answer for "
                                       "--win-rate."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Request cache for --win-rate (default: prefdata's)."),
) -> None:
    """Train the same model on several dataset variants at equal compute and score them on one held-out set."""
    import sys

    try:
        from prefdata.align.compare import WinRate, compare as run_compare, parse_variant
        from prefdata.align.config import load_config

        config = load_config(config_file, {"model": model, "method": method, "profile": profile,
                                           "max_steps": max_steps, "batch_size": batch_size,
                                           "eval_steps": eval_steps, "data": "(each variant's file)",
                                           "output": output})
        parsed = []
        for text in variants:
            parsed.append(parse_variant(text, {v.name for v in parsed}))
        _logging()
        if (judges or win_limit or cache) and not win_rate:
            raise PrefdataError("--judges, --win-limit and --cache go with --win-rate")
        win = WinRate(_judges(judges), win_limit, max_new_tokens, cache) if win_rate else None
        result = run_compare(config, parsed, held_out, output, seeds, allow_overlap,
                             argv=["align", *sys.argv[1:]], win=win)
    except PrefdataError as exc:
        _fail(exc)
    typer.echo((Path(output) / "README.md").read_text(encoding="utf-8").split("Equal compute")[0].strip())
    typer.echo(f"every figure in {Path(output) / 'compare.json'}; {len(result['runs'])} runs")


def main() -> None:
    run(app, "align")


if __name__ == "__main__":
    main()
