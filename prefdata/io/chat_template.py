"""Prompts written through a tokenizer's chat template (the standard form's `chat_template` option).

The template is Jinja from a model folder or the Hub: transformers renders it in Jinja's immutable sandbox
(`apply_chat_template`), and any failure of it (a syntax error, a `raise_exception` of the template, a
sandbox refusal) is a one-line error naming the tokenizer and the row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from prefdata.errors import PrefdataError


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


@lru_cache(maxsize=4)
def renderer(name: str) -> Callable[[list[dict]], str]:
    """A function rendering a message list as `name`'s chat template does, with the generation prompt (the text a
    model continues with its answer). `name`: a tokenizer or model folder, or a Hub id."""
    try:
        import jinja2  # noqa: F401  transformers renders chat templates with it
        from transformers import AutoTokenizer
    except ImportError:
        raise PrefdataError("a chat template needs transformers (and jinja2): pip install 'prefdata[transformers]'"
                            ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError, ImportError) as exc:
        raise PrefdataError(f"chat template: {name}: no tokenizer could be loaded ({_line(exc)})") from None
    if not getattr(tokenizer, "chat_template", None):
        raise PrefdataError(f"chat template: {name}: this tokenizer has no chat template")

    def render(messages: list[dict]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    return render


def render_prompts(prompts: list[list[dict]], name: str) -> list[str]:
    """Each prompt (a message list) as `name`'s chat template renders it, ready for the model's answer."""
    import jinja2

    render = renderer(name)
    texts = []
    for row, messages in enumerate(prompts, start=1):
        try:
            texts.append(render([{"role": m["role"], "content": m["content"]} for m in messages]))
        except (jinja2.TemplateError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise PrefdataError(f"row {row}: field 'prompt': the chat template of {name} failed: "
                                f"{type(exc).__name__}: {_line(exc)}") from None
    return texts
