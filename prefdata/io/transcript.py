"""Anthropic HH-RLHF transcripts (`\\n\\nHuman: ...\\n\\nAssistant: ...`) to message lists and back.

The same convention writes multi-turn prompts in the standard (plain string) form, so that a
standard file written by prefdata reads back into the same turns.
"""

from __future__ import annotations

import re

import polars as pl

SPEAKERS = {"Human": "user", "Assistant": "assistant", "System": "system"}
LABELS = {role: label for label, role in SPEAKERS.items()}
_TURN = re.compile(r"\n\n(Human|Assistant|System): ?")


def is_transcript(text: str) -> bool:
    return _TURN.match(text) is not None


def parse(text: str, drop_cue: bool = False) -> list[dict[str, str]]:
    """Split a transcript into turns. Text before the first marker is an error (not a transcript).
    With `drop_cue`, a final empty `Assistant:` turn (the generation cue of a prompt) is dropped."""
    parts = _TURN.split(text)
    if parts[0].strip():
        raise ValueError("text before the first '\\n\\nHuman:' marker")
    turns = [{"role": SPEAKERS[label], "content": body} for label, body in zip(parts[1::2], parts[2::2])]
    if drop_cue and turns and turns[-1]["role"] == "assistant" and turns[-1]["content"] == "":
        turns.pop()
    return turns


def render_expr(messages: pl.Expr, cue: bool = True) -> pl.Expr:
    """Polars expression rendering a list of messages as a transcript, ending with the assistant cue."""
    label = pl.element().struct.field("role").replace_strict(LABELS, default="Human")
    turns = messages.list.eval(pl.lit("\n\n") + label + pl.lit(": ") + pl.element().struct.field("content"))
    text = turns.list.join("")
    return text + pl.lit("\n\nAssistant:") if cue else text
