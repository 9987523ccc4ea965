"""What a spec can know, checked before its first request (DESIGN.md, rule 9): the files it names, the
request cache, the format names, and how many requests the build would send.

`prefdata build` and `prefdata build --dry-run` both run `check_spec` first, so a missing gold file or a
cache path that names a folder fails in one line before anything is spent, not after generation.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefdata.errors import PrefdataError
from prefdata.spec import Spec

SQLITE_MAGIC = b"SQLite format 3\x00"


def check_spec(spec: Spec) -> Path:
    """Every check that needs no model; returns the request cache's path."""
    from prefdata.io.formats import FORMATS

    for i, source in enumerate(spec.sources):
        _readable(spec.resolve(source.path), spec.where("sources", i, "path"))
        _format(source.format, spec.where("sources", i, "format"), FORMATS)
    if spec.gold is not None:
        _readable(spec.resolve(spec.gold.path), spec.where("gold", "path"))
        _format(spec.gold.format, spec.where("gold", "format"), FORMATS)
    for i, judge in enumerate(spec.judges):  # a reward model's folder is read on its first request: check it now
        model = judge.backend.model or ""
        local_reward = judge.kind == "reward_model" and judge.backend.kind == "transformers"
        if local_reward and not Path(model).expanduser().exists():
            from prefdata.io.raw import HUB_ID

            if not HUB_ID.match(model) or Path(model.split("/")[0]).is_dir():  # out/rm with out/ here: a folder
                raise PrefdataError(f"{spec.where('judges', i, 'backend', 'model')}: {model}: no such folder (nor a "
                                    "Hub id); backend models are relative to where the build runs")
    for i, step in enumerate(spec.curate):
        for j, name in enumerate(getattr(step, "eval_sets", None) or []):  # opened as given by decontaminate
            _readable(Path(name), spec.where("curate", i, "eval_sets", j))
        if step.step == "human_review":  # opened as given, like eval_sets; a bad line fails before any request
            _decision_log(Path(step.file), spec.where("curate", i, "file"))
        if step.step == "semantic_dedupe":  # its extra and model, before any request (torch is not imported)
            from prefdata.curate.semantic_dedupe import require

            try:
                require(step.model)
            except PrefdataError as exc:
                raise PrefdataError(f"{spec.where('curate', i)}: {exc}") from None
    if spec.output.chat_template is not None:  # a tokenizer without a template fails now, not after the build
        from prefdata.io.chat_template import renderer

        try:
            renderer(chat_template(spec))
        except PrefdataError as exc:
            raise PrefdataError(f"{spec.where('output', 'chat_template')}: {exc}") from None
    return check_cache(spec)


def chat_template(spec: Spec) -> str | None:
    """The tokenizer `output.chat_template` names: a folder (relative to the spec file) or a Hub id."""
    name = spec.output.chat_template
    if name is None:
        return None
    path = spec.resolve(name)
    if path.exists():
        return str(path)
    from prefdata.io.raw import HUB_ID

    if HUB_ID.match(name) and not Path(name.split("/")[0]).is_dir():
        return name
    raise PrefdataError(f"{spec.where('output', 'chat_template')}: {path}: no such folder (nor a Hub id)")


def _readable(path: Path, key: str) -> None:
    from prefdata.io.raw import HUB_ID

    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise PrefdataError(f"{key}: {path}: folder not readable")
        return
    if not path.exists():
        if HUB_ID.match(str(path)):
            return  # a Hub dataset id: it is fetched when read
        raise PrefdataError(f"{key}: {path}: no such file or folder")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise PrefdataError(f"{key}: {path}: cannot read ({exc.strerror or exc})") from None


def _decision_log(path: Path, key: str) -> None:
    from prefdata.review import log

    if not path.is_file():
        raise PrefdataError(f"{key}: {path}: no such file (a decision log that `prefdata review` writes)")
    log.read(path)


def _format(name: str | None, key: str, known) -> None:
    if name is not None and name not in known:
        raise PrefdataError(f"{key}: unknown format {name!r} (choose from {', '.join(known)})")


def cache_path(spec: Spec) -> Path:
    from prefdata.backends.cache import default_path

    return spec.resolve(spec.cache) if spec.cache else default_path()


def check_cache(spec: Spec) -> Path:
    """The cache must be a SQLite file, or a file that can be created: a folder (sqlite's 'unable to open
    database file' after the run had started) or an unwritable place is refused before anything runs."""
    path = cache_path(spec)
    key = spec.where("cache") if spec.cache else "the request cache (PREFDATA_HOME)"
    if path.is_dir():
        raise PrefdataError(f"{key}: {path} is a folder; name a file, e.g. {path / 'requests.sqlite'}")
    if path.exists():
        try:
            with path.open("rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise PrefdataError(f"{key}: {path}: cannot read ({exc.strerror or exc})") from None
        if head and head != SQLITE_MAGIC:
            raise PrefdataError(f"{key}: {path} is not a SQLite file (not a request cache); name another file")
        if not os.access(path, os.W_OK):
            raise PrefdataError(f"{key}: {path}: not writable")
        return path
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise PrefdataError(f"{key}: {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PrefdataError(f"{key}: {path}: cannot create it ({parent} is not writable)")
    return path


def check_request_count(spec: Spec, prompts: int) -> int:
    """Refuse a build that would send more than `max_requests`, before a request list is even built."""
    total = prompts * spec.requests_per_prompt()
    if total > spec.max_requests:
        raise PrefdataError(f"{spec.where('max_requests')}: this build would send {total:,} requests "
                            f"({prompts:,} prompts x {spec.requests_per_prompt():,} each: simulated turns, candidates "
                            f"and judge verdicts), more than max_requests ({spec.max_requests:,}); raise max_requests "
                            f"in the spec if you mean it, or lower n, the generators, the judges or sources[].limit")
    return total
