"""Shared pieces of the align tests: stamped real data (prefdata convert + validate) and a tiny model
built offline (random weights, the embedded model's tokenizer and chat template)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.conftest import DPO_DEMO, KTO_DEMO, run_cli


def _text_length(column: str) -> pl.Expr:
    return pl.col(column).list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()


def shortest(source: Path, target: Path, rows: int, kind: str) -> Path:
    """`prefdata convert` the shared file, keep its `rows` shortest records, write them, stamp them."""
    from prefdata.io import read_dataset, write_table

    full = target.with_name(target.stem + "_all.parquet")
    run_cli("convert", source, full, check=True)
    frame = read_dataset(full).frame
    sides = ["chosen", "rejected"] if kind == "pairwise" else ["completion"]
    length = _text_length("prompt") + pl.max_horizontal(*[_text_length(c) for c in sides])
    write_table(frame.with_columns(_n=length).sort("_n").head(rows).drop("_n"), target)
    run_cli("validate", target, "--set", "min_pairs=10", check=True)
    return target


@pytest.fixture(scope="session")
def stamped_pairs(tmp_path_factory) -> Path:
    return shortest(DPO_DEMO, tmp_path_factory.mktemp("pairs") / "pairs.parquet", 40, "pairwise")


@pytest.fixture(scope="session")
def stamped_kto(tmp_path_factory) -> Path:
    return shortest(KTO_DEMO, tmp_path_factory.mktemp("kto") / "kto.parquet", 40, "unpaired")


@pytest.fixture(scope="session")
def tiny_model(embedded_model, tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and SmolLM2's tokenizer (which has a chat template)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(embedded_model))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    target = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(str(target))
    tok.save_pretrained(str(target))
    return target
