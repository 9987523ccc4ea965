"""Tokenizer preparation: a pad token, a chat template, and truncation measured before the run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from prefdata.errors import PrefdataError

log = logging.getLogger("align")
PREFLIGHT_ROWS = 2000  # rendering is per row (the tokenizer's Jinja API); a sample gives the share


def prepare_tokenizer(model: str, chat_template: str | None = None) -> tuple[Any, list[str]]:
    """Load the tokenizer; set pad = EOS when missing; refuse a model without a chat template."""
    from prefdata.tokens import load_tokenizer

    tok = load_tokenizer(model)
    notes = []
    if chat_template:
        try:
            tok.chat_template = Path(chat_template).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PrefdataError(f"chat_template: cannot read {chat_template} ({exc})") from None
        notes.append(f"chat template from {chat_template}")
    if not getattr(tok, "chat_template", None):
        raise PrefdataError(f"{model}: the tokenizer has no chat template (a raw base model?); train on the SFT "
                            "model or give chat_template: a Jinja file")
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise PrefdataError(f"{model}: the tokenizer has neither a pad nor an EOS token")
        tok.pad_token = tok.eos_token
        notes.append(f"pad token set to EOS ({tok.eos_token!r})")
    return tok, notes


def truncation(frame: pl.DataFrame, kind: str, tok: Any, max_length: int, max_share: float = 0.05,
               seed: int = 0) -> dict[str, Any]:
    """The pre-flight's token-length figures (validators) on a sample: how many rows max_length would cut."""
    from prefdata.validators.inputs import Inputs
    from prefdata.validators.preflight import preflight
    from prefdata.thresholds import Thresholds

    sample = frame.sample(min(frame.height, PREFLIGHT_ROWS), seed=seed) if frame.height else frame
    if sample.height == 0:
        return {"rows": 0}
    checks = {c.name: c for c in preflight(Inputs(sample, kind, Thresholds(max_length=max_length,
                                                                           max_truncated_share=max_share)),
                                           tok, max_length)}
    lengths, cut = checks["token_lengths"], checks["truncation"]
    figures = {"rows": sample.height, "max_length": max_length, "truncated_share": cut.value,
               **(lengths.figures or {})}
    if cut.value is not None and not cut.passed:
        figures["warning"] = (f"{cut.value:.0%} of rows are longer than max_length {max_length} tokens and will be "
                              f"truncated (p95 {lengths.figures['prompt_completion']['p95']}); raise max_length or "
                              "filter long rows")
    if not checks["prompt_prefix"].passed:
        figures["prefix_warning"] = checks["prompt_prefix"].message
    return figures


MIN_COMPLETION_TOKENS = 8


def prompt_fits(frame: pl.DataFrame, tok: Any, max_length: int) -> pl.Series:
    """True where the rendered prompt leaves room for a completion within max_length. ORPO and CPO/SimPO
    keep the prompt whole when truncating, so a prompt that fills max_length leaves an empty completion,
    whose mean log-prob is NaN, and one NaN loss poisons every weight."""
    if frame.height == 0:
        return pl.Series("fits", [], dtype=pl.Boolean)
    from prefdata.tokens import count, render_prompt

    lengths = pl.Series(count(tok, [render_prompt(tok, p) for p in frame["prompt"].to_list()]))
    return (lengths <= max_length - MIN_COMPLETION_TOKENS).alias("fits")


def pair_fits(frame: pl.DataFrame, tok: Any, max_length: int) -> pl.Series:
    """True where prompt + chosen and prompt + rejected, rendered as TRL's RewardTrainer renders them (the
    whole conversation through the chat template), are both at most max_length tokens."""
    from prefdata.tokens import messages

    def length(prompt: list[dict], answer: list[dict]) -> int:
        return len(tok.apply_chat_template(messages(prompt + answer), tokenize=True, return_dict=True)["input_ids"])

    fits = [max(length(p, c), length(p, r)) <= max_length
            for p, c, r in frame.select("prompt", "chosen", "rejected").iter_rows()]
    return pl.Series("fits", fits, dtype=pl.Boolean)
