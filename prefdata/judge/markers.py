"""Chat-template markers, defused inside judged text: the one maintained list, and the defusing.

A judge prompt carries text written by models and users. A local judge renders its chat template to text
and tokenizes it with special tokens parsed (the transformers backend does, vLLM does, and so may a server
behind an OpenAI-compatible API), so an answer holding `<|im_end|>` or `[INST]` would end the judge's turn or
open another as real tokens. Each marker found in judged text gets a WORD JOINER (U+2060: invisible, and
never part of a special token) after its first character, which leaves it readable and makes it plain text.

What is defused:
- the edges of every `<|...|>` token, whatever its name: ChatML and Qwen (`<|im_start|>`, `<|im_end|>`,
  `<|endoftext|>`), Llama 3 (`<|begin_of_text|>`, `<|start_header_id|>`, `<|eot_id|>`),
  Phi (`<|user|>`, `<|assistant|>`, `<|end|>`), gpt-oss, Granite, Command R, Jamba;
- the edges of DeepSeek's full-width `<｜...｜>` (`<｜begin▁of▁sentence｜>`, `<｜User｜>`, `<｜Assistant｜>`);
- MARKERS below: Llama 2 and Mistral, Mistral's control tokens, Gemma, reasoning and tool tags (Qwen,
  DeepSeek-R1, Hermes), Command R, GLM;
- for a local judge, every special and added token of its own tokenizer (`own`, from the backend's
  `special_tokens()`), so a family missing here is still covered where the template is rendered locally.
  Tokens of one character cannot be split and whitespace-only added tokens mean nothing to a template:
  those two kinds are left alone.
Add a family's markers to MARKERS when an API judge may run it.
"""

from __future__ import annotations

import re
from functools import lru_cache

JOINER = "\u2060"
EDGES = {"<|": "<" + JOINER + "|", "|>": "|" + JOINER + ">", "<｜": "<" + JOINER + "｜", "｜>": "｜" + JOINER + ">"}
MARKERS = (
    "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "<unk>",  # Llama 2, Mistral, Mixtral
    "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]",  # Mistral v3+
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[THINK]", "[/THINK]",
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>",  # Gemma
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",  # Qwen, R1, Hermes
    "<tools>", "</tools>",
    "<BOS_TOKEN>", "<EOS_TOKEN>",  # Command R (its turns are <|...|>)
    "[gMASK]", "<sop>", "<eop>",  # GLM (its roles are <|...|>)
)
_EDGE = re.compile("|".join(map(re.escape, EDGES)))


@lru_cache(maxsize=16)
def _pattern(own: tuple[str, ...]) -> re.Pattern:
    """One alternation of every marker, longest first (a tokenizer's list may hold thousands of tokens)."""
    tokens = {t for t in MARKERS + own if len(t) > 1 and t.strip()}
    return re.compile("|".join(map(re.escape, sorted(tokens, key=lambda t: (-len(t), t)))))


def first_marker(text: str, own: tuple[str, ...] = ()) -> str | None:
    """The first chat-template marker in `text` (a `<|`, `|>`, `<｜` or `｜>` edge, one of MARKERS, or one of `own`),
    or None: what `defuse` would defuse."""
    found = [m for m in (_pattern(tuple(own)).search(text), _EDGE.search(text)) if m is not None]
    return min(found, key=lambda m: m.start()).group() if found else None


def defuse(text: str, own: tuple[str, ...] = ()) -> str:
    """`text` with every chat-template marker (and each of `own`, a judge's own special tokens) made plain."""
    pattern = _pattern(tuple(own))
    for _ in range(4):  # a marker overlapping one just defused (rare) is found on the next pass
        text, found = pattern.subn(lambda m: m.group()[0] + JOINER + m.group()[1:], text)
        if not found:
            break
    return _EDGE.sub(lambda m: EDGES[m.group()], text)
