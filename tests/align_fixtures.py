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


def small_tokenizer(embedded_model: Path, texts: list[str]):
    """A 600-token byte-level BPE trained on the data, with ChatML specials and SmolLM2's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
    tok.chat_template = AutoTokenizer.from_pretrained(str(embedded_model)).chat_template
    return tok


@pytest.fixture(scope="session")
def tiny_model(embedded_model, tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and a small tokenizer with a chat template, built offline."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from prefdata.io import read_dataset

    frame = read_dataset(DPO_DEMO).frame.head(100)
    texts = [m["content"] for column in ("prompt", "chosen", "rejected") for turns in frame[column].to_list()
             for m in turns]
    tok = small_tokenizer(embedded_model, texts)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    target = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(str(target))
    tok.save_pretrained(str(target))
    return target
