"""Training pre-flight with the real tokenizer and chat template (transformers is imported only here).

What the practitioners check by hand before a DPO/KTO run: the model has a chat template (an SFT
model, not a raw base model), EOS and pad tokens exist, the rendered prompt is a prefix of the
rendered prompt + completion (otherwise the trainer's prompt/completion split is wrong), and token
lengths fit `max_length`. Rendering goes through the tokenizer's Jinja template one row at a time:
that is the tokenizer's API; the token counting is batched in its Rust tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from prefdata.tokens import count, load_tokenizer, render, render_prompt
from prefdata.validators.inputs import Inputs, preview
from prefdata.validators.result import CheckResult, skipped

COMPLETIONS = {"pairwise": ("chosen", "rejected"), "unpaired": ("completion",)}
NAMES = ("chat_template", "special_tokens", "prompt_prefix", "token_lengths", "truncation")


def chat_template(tok: Any) -> CheckResult:
    has = bool(getattr(tok, "chat_template", None))
    return CheckResult("chat_template", "error", has, has, "present",
                       "the tokenizer has a chat template" if has else
                       "no chat template: a raw base model; train DPO/KTO on the SFT model whose template you used")


def special_tokens(tok: Any) -> CheckResult:
    eos, pad = tok.eos_token, tok.pad_token
    ok = eos is not None and pad is not None
    missing = [name for name, token in (("eos", eos), ("pad", pad)) if token is None]
    return CheckResult("special_tokens", "error", ok, {"eos": eos, "pad": pad}, "eos and pad set",
                       "EOS and pad tokens exist" if ok else f"missing: {', '.join(missing)} token")


def _render(tok: Any, inp: Inputs) -> pl.DataFrame:
    """One row per (row, completion): the rendered prompt and the rendered prompt + completion."""
    rows = []
    columns = [c for c in COMPLETIONS[inp.kind] if c in inp.frame.columns]
    data = inp.frame.select("prompt", *columns).to_dict(as_series=False)
    for i, prompt in enumerate(data["prompt"]):
        head = render_prompt(tok, prompt)
        for column in columns:
            full = render(tok, prompt + data[column][i])
            rows.append({"row": i + 1, "completion": column, "prompt_text": head, "full_text": full})
    return pl.DataFrame(rows, schema={"row": pl.Int64, "completion": pl.String, "prompt_text": pl.String,
                                      "full_text": pl.String})


def prompt_prefix(rendered: pl.DataFrame, n: int) -> CheckResult:
    bad = rendered.filter(~pl.col("full_text").str.starts_with(pl.col("prompt_text")))
    examples = []
    for r in bad.head(n).iter_rows(named=True):
        at = next((k for k, (a, b) in enumerate(zip(r["prompt_text"], r["full_text"])) if a != b),
                  min(len(r["prompt_text"]), len(r["full_text"])))
        examples.append({"row": r["row"], "completion": r["completion"], "differs_at": at,
                         "prompt_rendered": preview(r["prompt_text"][max(0, at - 60):]),
                         "full_rendered": preview(r["full_text"][max(0, at - 60):])})
    return CheckResult("prompt_prefix", "error", bad.height == 0, bad.height, 0,
                       f"{bad.height} rendered prompts are not a prefix of their rendered prompt + completion",
                       examples=examples)


def _quantiles(column: str) -> list[pl.Expr]:
    c = pl.col(column)
    return [c.quantile(q, "nearest").cast(pl.Int64).alias(name) for name, q in (("p50", 0.5), ("p95", 0.95))] + [
        c.max().alias("max")]


def token_lengths(lengths: pl.DataFrame, max_length: int, max_share: float, n: int) -> list[CheckResult]:
    """Per row, the longest prompt + completion (a pair is truncated if either side is)."""
    per_row = lengths.group_by("row").agg(pl.col("prompt_tokens").first(), pl.col("full_tokens").max()).sort("row")
    prompt = per_row.select(_quantiles("prompt_tokens")).row(0, named=True)
    full = per_row.select(_quantiles("full_tokens")).row(0, named=True)
    over = per_row.filter(pl.col("full_tokens") > max_length)
    share = over.height / per_row.height
    figures = {"prompt": prompt, "prompt_completion": full, "max_length": max_length, "truncated": over.height}
    examples = [{"row": r, "tokens": t} for r, t in over.select("row", "full_tokens").head(n).iter_rows()]
    return [
        CheckResult("token_lengths", "error", full["p95"] <= max_length, full["p95"], f"p95 <= {max_length}",
                    f"prompt + completion tokens p50 {full['p50']}, p95 {full['p95']}, max {full['max']}; "
                    f"prompt p95 {prompt['p95']}", figures=figures),
        CheckResult("truncation", "warning", share <= max_share, round(share, 4), f"<= {max_share}",
                    f"{over.height} of {per_row.height} rows longer than max_length {max_length}",
                    figures={"truncated": over.height}, examples=examples),
    ]


def preflight(inp: Inputs, tokenizer: Any, max_length: int | None = None) -> list[CheckResult]:
    """The pre-flight checks; `tokenizer` is a path or a loaded tokenizer."""
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
    max_length = max_length or inp.thresholds.max_length
    results = [chat_template(tok), special_tokens(tok)]
    if inp.kind not in COMPLETIONS or inp.rows == 0 or not results[0].passed:
        why = "no chat template to render with" if not results[0].passed else f"nothing to render ({inp.kind})"
        return results + [skipped(n, s, why) for n, s in
                          (("prompt_prefix", "error"), ("token_lengths", "error"), ("truncation", "warning"))]
    rendered = _render(tok, inp)
    results.append(prompt_prefix(rendered, inp.examples))
    lengths = rendered.select("row").with_columns(
        pl.Series("prompt_tokens", count(tok, rendered["prompt_text"].to_list())),
        pl.Series("full_tokens", count(tok, rendered["full_text"].to_list())),
    )
    return results + token_lengths(lengths, max_length, inp.thresholds.max_truncated_share, inp.examples)
