"""Configs of the curation steps, as they appear in `spec.yaml` under `curate:` (in any order).

Each item is a mapping with `step:` naming it, or just the step's name for its defaults:

    curate:
      - dedupe
      - {step: near_dedupe, threshold: 0.8}
      - {step: filter, min_margin: 2}

Pydantic only (no Polars) so that loading a spec stays light.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Step(BaseModel):
    """A curation step's config. `run` names the function that runs it ("module:function", the module under
    prefdata.curate unless dotted): a new step is its module plus its config class here, listed in STEPS."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a NaN bound would keep every row
    run: ClassVar[str]


class DedupeConfig(Step):
    step: Literal["dedupe"] = "dedupe"
    run: ClassVar[str] = "dedupe:exact"
    level: Literal["pair", "prompt"] = Field(
        "pair", description="pair: same (prompt, chosen, rejected). prompt: one pair per prompt.")
    keep: Literal["first", "highest_margin"] = Field("first", description="Which duplicate survives.")
    identical: bool = Field(True, description="Also drop pairs whose chosen and rejected are the same.")


class NearDedupeConfig(Step):
    step: Literal["near_dedupe"] = "near_dedupe"
    run: ClassVar[str] = "near_dedupe:near_dedupe"
    scope: Literal["prompt", "pair"] = Field(
        "pair", description="Compare prompts, or whole pairs (prompt, chosen and rejected together).")
    ngram: int = Field(5, ge=1, description="Shingle length, in units.")
    unit: Literal["words", "chars", "auto"] = Field(
        "auto", description="auto: characters for scripts written without spaces (CJK, Thai), else words.")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity from which rows are duplicates.")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash signature length.")
    bands: int | None = Field(None, ge=1, description="LSH bands (default: from threshold and num_perm).")
    rows: int | None = Field(None, ge=1, description="Signature rows per band.")
    verify: Literal["exact", "signature", "none"] = Field(
        "exact", description="Check LSH candidates by exact Jaccard, by signature estimate, or not at all.")
    keep: Literal["first", "highest_margin"] = Field("first", description="Which duplicate survives.")

    @model_validator(mode="after")
    def _bands_fit(self) -> "NearDedupeConfig":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both 'bands' and 'rows', or neither")
        if self.bands and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


class SemanticDedupeConfig(Step):
    step: Literal["semantic_dedupe"] = "semantic_dedupe"
    run: ClassVar[str] = "semantic_dedupe:semantic_dedupe"
    scope: Literal["prompt", "pair"] = Field(
        "prompt", description="prompt: compare prompts (their user turns). pair: prompt, chosen and rejected must "
                              "each reach the threshold (three embeddings per row).")
    threshold: float = Field(0.9, gt=0, le=1, description="Cosine similarity of sentence embeddings from which rows "
                                                          "are duplicates (0.9: paraphrases, not related questions).")
    model: str | None = Field(None, description="A local sentence-transformers model folder (BERT-style, mean "
                                                "pooling); default: all-MiniLM-L6-v2 from the extra's wheel.")
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per forward pass.")
    max_length: int = Field(256, ge=8, le=8192, description="Tokens per text; longer texts are cut.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 on a CPU with native bfloat16 (AVX512-BF16, AMX), else float32.")
    keep: Literal["first", "highest_margin"] = Field("first", description="Which duplicate survives.")


class FilterConfig(Step):
    step: Literal["filter"] = "filter"
    run: ClassVar[str] = "filters:filter_pairs"
    min_margin: float | None = Field(None, description="Drop pairs whose score margin is below this (or missing).")
    min_agreement: float | None = Field(None, ge=0, le=1, description="Drop pairs with less judge agreement.")
    min_confidence: float | None = Field(None, ge=0, le=1, description="Drop pairs whose judges' confidence is "
                                         "below this; pairs without one (no token probabilities) are kept, counted.")
    unit: Literal["chars", "words", "tokens"] = Field("chars", description="Unit of the length bounds.")
    tokenizer: str | None = Field(None, description="Tokenizer for unit 'tokens' (default: the embedded model's).")
    min_length: int | None = Field(None, ge=0, description="Shortest chosen/rejected answer allowed.")
    max_length: int | None = Field(None, ge=1, description="Longest chosen/rejected answer allowed.")
    max_prompt_length: int | None = Field(None, ge=1, description="Longest prompt (all turns) allowed.")
    max_length_ratio: float | None = Field(
        None, ge=1, description="Largest longer/shorter answer length ratio allowed.")
    language: list[str] | None = Field(
        None, min_length=1, description="Keep pairs whose prompt (its user turns) is in one of these languages, "
                                        "ISO 639-1 codes (en, de...); adds a `language` column. Needs lingua.")
    keep_undetermined: bool = Field(True, description="With `language`: keep pairs whose prompt's language cannot "
                                                      "be told (a few words, no letters); they are counted.")

    @field_validator("language")
    @classmethod
    def _codes(cls, codes: list[str] | None) -> list[str] | None:
        if codes is None:
            return None
        codes = [code.strip().lower() for code in codes]
        bad = [code for code in codes if not (len(code) == 2 and code.isascii() and code.isalpha())]
        if bad:
            raise ValueError(f"not ISO 639-1 codes (two letters, such as en or de): {', '.join(bad)}")
        return codes


class DecontaminateConfig(Step):
    step: Literal["decontaminate"] = "decontaminate"
    run: ClassVar[str] = "decontaminate:decontaminate"
    eval_sets: list[str] = Field(min_length=1, description="Evaluation sets: files (any readable table) or Hub ids.")
    field: str | None = Field(None, description="Column holding the eval text (default: every text column).")
    split: str | None = Field(None, description="Split of a Hub dataset.")
    ngram: int = Field(13, ge=1, description="n-gram length (13 words, as GPT-3's decontamination).")
    unit: Literal["words", "chars", "auto"] = Field(
        "auto", description="n-gram unit; auto: characters for scripts written without spaces (CJK, Thai), else words.")
    min_overlap: int = Field(1, ge=1, description="Shared n-grams that make a prompt contaminated.")
    action: Literal["drop", "flag"] = Field("drop", description="flag: keep rows, add a `contaminated` column.")


class BalanceConfig(Step):
    step: Literal["length_balance"] = "length_balance"
    run: ClassVar[str] = "length_bias:balance"
    target: float = Field(0.5, ge=0, le=1, description="Wanted share of pairs whose chosen answer is longer.")
    tolerance: float = Field(0.05, ge=0, le=0.5, description="Accepted distance from the target.")
    unit: Literal["chars", "words", "tokens"] = Field("chars", description="Length unit.")
    tokenizer: str | None = Field(None, description="Tokenizer for unit 'tokens' (default: the embedded model's).")
    seed: int = Field(0, description="Which pairs go: a hash of pair_id and this seed, not row order.")


class SplitConfig(Step):
    step: Literal["split"] = "split"
    run: ClassVar[str] = "split:split"
    test_size: float = Field(0.1, gt=0, lt=1, description="Share of prompts in the test split.")
    stratify: str | None = Field(None, description="Column to stratify by (its value for each prompt group).")
    seed: int = Field(0, description="Changes which prompts go to test.")
    group: str = Field("prompt_id", description="Rows sharing this column's value land in the same split.")


class HumanReviewConfig(Step):
    step: Literal["human_review"] = "human_review"
    run: ClassVar[str] = "prefdata.review.apply:human_review"
    file: str = Field(min_length=1, description="A decision log written by `prefdata review` (review.jsonl): "
                      "accept keeps a pair, swap exchanges chosen and rejected, drop removes it with its reason.")


PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")  # presidio's names
PII_ALIASES = {"EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "CARD": "CREDIT_CARD", "IBAN": "IBAN_CODE",
               "IP": "IP_ADDRESS"}


class PiiConfig(Step):
    step: Literal["pii"] = "pii"
    run: ClassVar[str] = "pii:pii"
    action: Literal["redact", "drop", "flag"] = Field(
        "redact", description="redact: replace each span with <ENTITY>. drop: remove pairs holding any. flag: keep "
                              "all. Each adds a `pii` column listing what was found (drop: in the dropped records).")
    entities: list[str] = Field(list(PII_ENTITIES), min_length=1, description=(
        "What to look for: EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, IP_ADDRESS (or EMAIL, PHONE, CARD, "
        "IBAN, IP). Names are not covered (no English NER model on PyPI from its makers)."))
    fields: list[Literal["prompt", "chosen", "rejected"]] = Field(
        ["prompt", "chosen", "rejected"], min_length=1, description="Columns whose turns are scanned.")
    score_threshold: float = Field(0.3, ge=0, le=1, description="presidio's lowest score kept (phone 0.4, IP 0.6, "
                                                                "checked e-mail, card and IBAN 1.0; the bare IPv6 "
                                                                "'::' 0.1).")
    max_chars: int = Field(100_000, ge=1, description="Longer texts are not scanned: their pairs are dropped as "
                                                      "pii_unscanned (redact, drop) or kept with a null pii (flag).")

    @field_validator("entities")
    @classmethod
    def _entities(cls, names: list[str]) -> list[str]:
        names = [PII_ALIASES.get(name.strip().upper(), name.strip().upper()) for name in names]
        bad = [name for name in names if name not in PII_ENTITIES]
        if bad:
            raise ValueError(f"unknown entities {', '.join(bad)} (known: {', '.join(PII_ENTITIES)}; names would need "
                             f"an English NER model, not on PyPI from its makers)")
        return list(dict.fromkeys(names))


STEPS = (DedupeConfig, NearDedupeConfig, SemanticDedupeConfig, FilterConfig, DecontaminateConfig, BalanceConfig,
         SplitConfig, HumanReviewConfig, PiiConfig)  # the registry of curation steps
StepConfig = Annotated[Union[STEPS], Field(discriminator="step")]


def expand_shorthand(items: object) -> object:
    """`- dedupe` means `- {step: dedupe}`."""
    if isinstance(items, list):
        return [{"step": item} if isinstance(item, str) else item for item in items]
    return items
