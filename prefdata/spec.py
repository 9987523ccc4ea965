"""The build spec (`spec.yaml`): Pydantic models, every field documented, unknown keys rejected.

Relative paths in a spec are relative to the spec file. Errors name the YAML path and line. A spec is
hostile input: it is read with the bounded loader (`prefdata.safe_yaml`), every number is finite and
bounded (a spec cannot ask for 10^15 candidates or a temperature of NaN), and judge templates are
checked when the spec is read, not after the candidates were paid for.
"""

from __future__ import annotations

import difflib
import math
import string
import typing
from math import comb
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal
from urllib.parse import urlsplit

from pydantic import PrivateAttr, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prefdata.curate.config import DedupeConfig, StepConfig, expand_shorthand
from prefdata.errors import PrefdataError
from prefdata.safe_yaml import line_of, load
from prefdata.redact import redact_text
from prefdata.backends.registry import KINDS, REWARD_KINDS
from prefdata.thresholds import Thresholds

MAX_REQUESTS = 1_000_000  # per build, unless the spec's max_requests says otherwise
MAX_TEMPERATURE = 2.0  # OpenAI's upper bound; past it sampling is noise on every backend
MAX_TOKENS = 131_072
MAX_BATCH = 4096  # requests per `generate` call
MAX_BATCH_API = 50_000  # OpenAI's most requests in one batch (Anthropic takes 100,000)
BATCH_API_SIZE = 10_000  # a Batch API backend's default batch_size: each provider batch is waited for in turn


class Strict(BaseModel):
    # NaN and infinity are refused in every float: `.nan` compares false with every bound
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BackendSpec(Strict):
    kind: Literal[tuple(KINDS)] = Field(
        "embedded", description="embedded: SmolLM2-135M-Instruct, offline. transformers: any local or Hub model. "
                                "openai: OpenAI or any OpenAI-compatible server (base_url). anthropic: the "
                                "Messages API. vllm: offline vllm.LLM on GPUs.")
    model: str | None = Field(None, description="Model id or folder (all kinds but embedded).")
    batch_size: int = Field(8, ge=1, le=MAX_BATCH_API, description="Requests per batch; each batch is cached "
                            f"before the next (up to 4096; up to {MAX_BATCH_API:,} with batch: true, default "
                            f"{BATCH_API_SIZE:,} there).")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ... (transformers, embedded)")
    base_url: str | None = Field(None, description="Server URL, e.g. http://127.0.0.1:8000/v1 (openai, anthropic).")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (default "
                                                      "OPENAI_API_KEY / ANTHROPIC_API_KEY). Keys never go in a spec.")
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once (openai, anthropic).")
    # Lower limits would not be rate limits but stalls: rpm 0.0001 is one request a week.
    rpm: float | None = Field(None, ge=1, le=1e7, description="Client-side limit: requests per minute (at least 1).")
    tpm: float | None = Field(None, ge=1000, le=1e10, description="Client-side limit: tokens per minute (estimated; "
                                                                  "at least 1000).")
    timeout_s: float = Field(60, ge=1, le=3600, description="Timeout of one HTTP request, in seconds (1 to 3600).")
    max_attempts: int = Field(6, ge=1, le=20, description="Tries per request on 429, 5xx, timeouts and connection "
                                                          "errors.")
    retry_initial_s: float = Field(1.0, ge=0, le=600, description="First backoff wait; doubles each retry, with "
                                                                  "jitter.")
    retry_max_s: float = Field(60.0, ge=0, le=3600, description="Longest wait between tries (Retry-After "
                                                                "included).")
    schema_retries: int = Field(2, ge=0, le=5, description="Re-asks when an answer does not match its JSON schema.")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for vllm.LLM (vllm).")
    batch: bool = Field(False, description="openai, anthropic: send each batch through the provider's Batch API "
                                           "(OpenAI Batch, Anthropic Message Batches): half price, up to a day's "
                                           "turnaround. A killed build resumes polling the batches it submitted.")
    poll_s: float = Field(30, ge=0.01, le=3600, description="batch: seconds between looks at a submitted batch.")
    batch_timeout_s: float = Field(86400 + 3600, ge=0.1, le=7 * 86400, description="batch: give up waiting for "
                                   "one batch after this many seconds (its requests fail; a re-run polls it again).")

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError("a key never goes in a spec: put it in an environment variable and name that "
                             "variable with api_key_env")
        return data

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        """Without a scheme or host every request would fail after the build started."""
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{redact_text(url)!r} is not an http:// or https:// URL with a host")
        return url

    @model_validator(mode="after")
    def _model_for_transformers(self) -> "BackendSpec":
        if self.kind != "embedded" and not self.model:
            raise ValueError(f"kind {self.kind!r} needs 'model'")
        return self

    @model_validator(mode="after")
    def _batch_api(self) -> "BackendSpec":
        """Batch API options mean nothing elsewhere; unset, a batch backend sends large batches (one provider batch
        per `generate` call, each waited for in turn)."""
        if not self.batch:
            # by value, not by `model_fields_set`: a spec dumped and read back (a Ray worker's) sets every field
            given = [name for name in ("poll_s", "batch_timeout_s")
                     if getattr(self, name) != type(self).model_fields[name].default]
            if given:
                raise ValueError(f"{given[0]}: only a Batch API backend takes it (set batch: true)")
            if self.batch_size > MAX_BATCH:
                raise ValueError(f"batch_size: at most {MAX_BATCH} (up to {MAX_BATCH_API:,} with batch: true)")
            return self
        if not KINDS[self.kind].batch:
            with_batch = " or ".join(name for name, kind in KINDS.items() if kind.batch)
            raise ValueError(f"batch: true: only {with_batch} have a Batch API, not {self.kind!r}")
        if "batch_size" not in self.model_fields_set:
            self.batch_size = BATCH_API_SIZE
        return self


class SourceSpec(Strict):
    path: str = Field(description="Prompts or preference data: file, dataset folder or Hub id.")
    format: str | None = Field(None, description="Input format; detected when omitted.")
    split: str | None = Field(None, description="Split of a dataset folder or Hub dataset.")
    limit: int | None = Field(None, ge=1, description="Take at most this many rows.")
    weight: float | None = Field(None, gt=0, le=1, description="Take this share of the rows (0.25: a quarter), "
                                 "to mix sources in chosen proportions; with `limit`, the smaller of the two.")
    sample: Literal["first", "random"] | None = Field(
        None, description="Which rows `limit`/`weight` take: the first ones, or a random sample seeded by `seed` "
                          "(default: first for a limit alone, random with a weight).")
    seed: int = Field(0, ge=0, description="Seed of the random sample: the same rows on every run.")
    on_error: Literal["raise", "skip"] = Field("raise", description="skip: bad records go to dropped.parquet "
                                                                    "with their reason instead of stopping.")


class ContrastSpec(Strict):
    good: str = Field(description="System prompt of the even samples.")
    bad: str = Field(description="System prompt of the odd samples.")


class UserSimulatorSpec(Strict):
    """The model that plays the user in a multi-turn build: it writes each next user turn from the conversation."""

    backend: BackendSpec | None = Field(None, description="The simulator's model (default: the first generator).")
    prompt: str | None = Field(None, description="Instruction template: {conversation} (the turns so far, fenced "
                                                 "and defused as the judge shows them) and {nonce} for the block "
                                                 "tags (default: prefdata.conversation.SIMULATOR_PROMPT).")
    max_tokens: int = Field(128, ge=1, le=MAX_TOKENS, description="Longest user turn, in tokens.")
    temperature: float = Field(0.7, ge=0, le=MAX_TEMPERATURE, description="Sampling temperature of the simulator.")

    @model_validator(mode="after")
    def _template(self) -> "UserSimulatorSpec":
        if self.prompt is not None:
            check_template(self.prompt, "user_simulator")
        return self


class GenerateSpec(Strict):
    backend: BackendSpec = Field(default_factory=BackendSpec)
    n: int = Field(2, ge=2, le=64, description="Candidates per prompt (2 to 64).")
    temperatures: list[Annotated[float, Field(ge=0, le=MAX_TEMPERATURE)]] = Field(
        [0.7, 1.0], min_length=1, max_length=64,
        description="Sampling temperatures (0 to 2), used in turn across the n candidates.")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS, description="Longest answer, in tokens.")
    system_prompt: str | None = Field(None, description="System message put before every prompt.")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    backends: list[BackendSpec] = Field(default_factory=list, max_length=16, description="Several generator "
                                        "models; each writes n candidates per prompt (default: `backend` alone).")
    contrast: ContrastSpec | None = Field(None, description="Alternate a good and a bad system prompt across "
                                                            "the n samples.")
    turns: int = Field(1, ge=1, le=16, description="Assistant turns the build writes per prompt (1 to 16). Above "
                                                   "1, each prompt is first continued: the first generator answers "
                                                   "(sample 0's settings) and the user simulator writes the next user "
                                                   "turn, turns - 1 times; the n candidates answer the last user turn.")
    user_simulator: UserSimulatorSpec | None = Field(None, description="The model playing the user when turns > 1 "
                                                                       "(default: the first generator, built-in "
                                                                       "instruction).")

    @model_validator(mode="after")
    def _simulator_needs_turns(self) -> "GenerateSpec":
        if self.user_simulator is not None and self.turns == 1:
            raise ValueError("user_simulator: means nothing with turns: 1 (no user turn is simulated); set turns")
        return self

    def simulator(self) -> UserSimulatorSpec:
        """The user simulator a multi-turn build uses (the spec's, else the default one)."""
        return self.user_simulator or UserSimulatorSpec()

    def rollout_requests(self) -> int:
        """Requests one prompt costs before its candidates: an assistant answer and a user turn per extra turn."""
        return 2 * (self.turns - 1)


class RubricSpec(Strict):
    aspects: list[str] = Field(["helpfulness", "accuracy", "clarity", "safety"], min_length=1, max_length=32,
                               description="Named aspects a pointwise judge scores (UltraFeedback style).")
    scale: Literal[5, 10] = Field(10, description="Scores run from 1 to this.")


class JudgeSpec(Strict):
    name: str | None = Field(None, description="Judge name in tables (default: model name and kind).")
    kind: Literal["pairwise", "pointwise", "reward_model"] = Field(
        "pairwise", description="pairwise: A vs B with a winner. pointwise: a rubric score per answer. "
                                "reward_model: a sequence-classification model's reward per answer.")
    backend: BackendSpec = Field(default_factory=BackendSpec)
    max_tokens: int = Field(96, ge=8, le=MAX_TOKENS, description="Longest verdict, in tokens.")
    swap: bool = Field(True, description="Judge each pairwise comparison in both orders (position-bias check).")
    rubric: RubricSpec = Field(default_factory=RubricSpec)
    prompt: str | None = Field(None, description="Custom user-prompt template: {conversation}, {answer_a}, "
                                                 "{answer_b} (pairwise) or {answer}, {aspects}, {scale} (pointwise), "
                                                 "and {nonce} for the block tags.")
    retries: int = Field(1, ge=0, le=3, description="Corrective re-asks when a verdict cannot be read.")
    max_length: int = Field(4096, ge=8, le=MAX_TOKENS, description="reward_model: longest input scored, in tokens "
                                                                   "(a longer one keeps its last max_length).")

    @model_validator(mode="after")
    def _template_fields(self) -> "JudgeSpec":
        if self.kind == "reward_model":
            return self._reward_model_fields()
        if "max_length" in self.model_fields_set:
            raise ValueError("max_length: only a reward_model judge takes it (the longest input it scores)")
        if self.prompt is not None:
            check_template(self.prompt, self.kind)
        return self

    def _reward_model_fields(self) -> JudgeSpec:
        """A reward model reads no prompt and writes no verdict: options about those would be silently ignored."""
        if self.backend.kind not in REWARD_BACKENDS:
            raise ValueError(f"backend.kind: a reward_model judge runs a sequence-classification model on "
                             f"{' or '.join(REWARD_BACKENDS)}, not {self.backend.kind!r}")
        given = sorted(self.model_fields_set & {"rubric", "swap", "prompt", "retries", "max_tokens"})
        if given:
            raise ValueError(f"{given[0]}: means nothing for a reward_model judge (it scores each answer alone, "
                             "reading no judge prompt and writing no verdict)")
        return self


REWARD_BACKENDS = REWARD_KINDS
TEMPLATE_FIELDS = {"pairwise": {"conversation", "answer_a", "answer_b", "nonce"},
                   "pointwise": {"conversation", "answer", "aspects", "scale", "nonce"},
                   "user_simulator": {"conversation", "nonce"}}
TEMPLATE_NEEDS = {"pairwise": ("answer_a", "answer_b"), "pointwise": ("answer",), "user_simulator": ("conversation",)}


def check_template(template: str, kind: str) -> None:
    """Everything `str.format` could fail on, or be made slow by, is refused when the spec is read, not
    after the candidates were paid for: an unknown {field} (often a JSON example with single braces), a
    conversion (`{answer_a!z}`) or a format spec (`{answer_a:>900000000}` asked for 3.6 GB). A template
    that leaves out the answers would have the judge decide blind."""
    allowed = TEMPLATE_FIELDS[kind]
    who = "user simulator" if kind == "user_simulator" else f"{kind} judge"
    hint = "write literal braces as {{ and }}"
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"prompt: {exc} ({hint})") from None
    for name, spec, conv in fields:
        if name not in allowed:
            raise ValueError(f"prompt: unknown field {{{name}}} for a {who} (fields: "
                             f"{', '.join(sorted(allowed))}; {hint})")
        if spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"prompt: {shown}: conversions (!r) and format specs (:d) are not allowed in a judge "
                             f"template; write {{{name}}}")
    missing = [name for name in TEMPLATE_NEEDS[kind] if name not in {f[0] for f in fields}]
    if missing:
        blind = "it would write" if kind == "user_simulator" else "the judge would decide"
        raise ValueError(f"prompt: a {who}'s template must show {{{missing[0]}}} ({blind} without seeing it)")


def judge_name(judge: JudgeSpec) -> str:
    """The judge's name in tables: its `name`, else its model and kind."""
    if judge.name:
        return judge.name
    model = judge.backend.model or ("SmolLM2-135M-Instruct" if judge.backend.kind == "embedded"
                                    else judge.backend.kind)
    return f"{model.rstrip('/').split('/')[-1]}:{judge.kind}"  # Hub ids and paths: the last part


class PanelSpec(Strict):
    method: Literal["majority", "mean_score", "bradley_terry"] = Field(
        "majority", description="How the judges' verdicts become one decision per comparison.")
    inconsistent: Literal["tie", "scores"] = Field(
        "tie", description="A judge whose two orders disagree: a tie, or settled by its mean scores.")
    pairing: Literal["best_vs_worst", "best_vs_each", "all_pairs"] = Field(
        "best_vs_worst", description="Which decided comparisons become pairs; ties are never paired.")
    weight: Literal["equal", "confidence"] = Field(
        "equal", description="equal: one judge, one vote. confidence: each verdict weighs the judge's confidence "
                             "(token probabilities; 1 where the backend gives none) in the vote and the mean score.")


class GoldSpec(Strict):
    path: str = Field(description="Known-answer pairs (any pairwise format): chosen must win.")
    format: str | None = None
    min_accuracy: float = Field(0.6, ge=0, le=1, description="A judge below this accuracy is flagged or dropped.")
    action: Literal["flag", "drop"] = Field("flag", description="flag: report it. drop: leave it out of the panel.")


class SftSpec(Strict):
    """Best-of-n: the judges' best answer per prompt as a supervised fine-tuning example."""

    min_score: float | None = Field(None, ge=1, le=10, description="Keep a prompt's best answer only when its "
                                    "judges' mean score (1-10) is at least this.")
    min_margin: float | None = Field(None, description="... and when it beat every answer it was compared with by "
                                     "at least this score margin.")


class CardSpec(Strict):
    """What the dataset card's Hub metadata says that the data cannot tell (huggingface_hub.DatasetCardData)."""

    license: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.+-]*$", max_length=64,
                                description="The Hub's license id (mit, apache-2.0, cc-by-4.0, other...). The "
                                            "sources' licenses bind the data: say theirs.")
    language: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] | None = Field(
        None, max_length=200, description="ISO 639 codes; default: those of the `language` column, if any.")
    pretty_name: str | None = Field(None, max_length=200, description="Default: the spec's name.")
    source_datasets: list[str] | None = Field(None, max_length=100, description="Default: `extended|ORG/NAME` "
                                              "for each source that is a Hub dataset.")
    tags: list[str] = Field(default_factory=list, max_length=50, description="Added to dpo, preference, prefdata.")


class OutputSpec(Strict):
    dir: str = Field("out", description="Dataset folder to write.")
    form: Literal["conversational", "standard"] = "conversational"
    sft: SftSpec | None = Field(None, description="Also write sft.parquet: the best answer per prompt in TRL's "
                                "`messages` form, for SFTTrainer (rejection sampling; `prefdata export --sft`).")
    card: CardSpec = Field(default_factory=CardSpec, description="The card's Hub metadata: license, language...")
    chat_template: str | None = Field(None, description="Standard form: write each prompt through this tokenizer's "
                                                        "chat template (a model folder or Hub id), with the "
                                                        "generation prompt, instead of a Human/Assistant transcript.")

    @model_validator(mode="after")
    def _template_needs_standard(self) -> "OutputSpec":
        if self.chat_template is not None and self.form != "standard":
            raise ValueError("chat_template: only the standard form writes prompts as text (set form: standard)")
        return self


class PriceSpec(Strict):
    input: float = Field(ge=0, le=1e6, description="USD per 1M input tokens.")
    output: float = Field(ge=0, le=1e6, description="USD per 1M output tokens.")


class EngineSpec(Strict):
    """Where generation and judging run: this process, or the workers of a Ray cluster."""

    kind: Literal["local", "ray"] = Field("local", description="local: this process. ray: Ray workers, each "
                                          "with its own copy of every backend (pip install 'prefdata[ray]').")
    address: str | None = Field(None, description="ray: the cluster's address (host:port, or auto); default: a "
                                                  "cluster started for this build on this machine.")
    workers: int | None = Field(None, ge=1, le=4096, description="ray: workers per backend (default: as many "
                                                                 "as the cluster's CPUs, or GPUs, hold).")
    cpus_per_worker: float = Field(1.0, gt=0, le=1024, description="ray: CPUs each worker reserves.")
    gpus_per_worker: float = Field(0.0, ge=0, le=64, description="ray: GPUs each worker reserves (a vLLM "
                                                                 "worker: its tensor-parallel size).")


class Spec(Strict):
    name: str = Field(description="Dataset name, used in the card.")
    description: str = ""
    sources: list[SourceSpec] = Field(min_length=1, max_length=1000)
    generate: GenerateSpec | None = Field(
        default_factory=GenerateSpec, description="null: no generation or judging; the sources are preference "
                                                  "pairs to curate.")
    judges: list[JudgeSpec] = Field(default_factory=lambda: [JudgeSpec()], min_length=1, max_length=16,
                                    description="The judge panel (one judge is a panel of one).")
    panel: PanelSpec = Field(default_factory=PanelSpec)
    gold: GoldSpec | None = Field(None, description="Known-answer pairs mixed in to measure each judge.")
    curate: list[StepConfig] = Field(
        default_factory=lambda: [DedupeConfig()], max_length=64,
        description="Curation steps, in order: dedupe, near_dedupe, filter, decontaminate, length_balance, split, "
                    "human_review (a name, or a mapping with `step:` and options; see prefdata.curate.config).")
    _curate_shorthand = field_validator("curate", mode="before")(expand_shorthand)
    output: OutputSpec = Field(default_factory=OutputSpec)
    validation: Thresholds = Field(default_factory=Thresholds,
                                   description="Thresholds of `prefdata validate` (prefdata.thresholds).")
    cache: str | None = Field(None, description="Request cache file (default: PREFDATA_HOME/cache/requests.sqlite).")
    prices: dict[str, PriceSpec] = Field(default_factory=dict,
                                         description="USD per 1M tokens per model; overrides the built-in table.")
    max_cost: float | None = Field(None, gt=0, le=1e9, description="Stop sending requests once this many USD are "
                                                                   "spent; everything finished so far is kept.")
    engine: EngineSpec = Field(default_factory=EngineSpec, description="Where generation and judging run (local "
                               "or Ray); `prefdata build --ray` sets kind ray.")
    max_requests: int = Field(MAX_REQUESTS, ge=1, le=10**9, description="The most model requests one build may "
                              "send (generation and judging, checked once the prompts are read, before any is "
                              "sent).")
    base_dir: Path = Field(Path("."), exclude=True, description="Folder relative paths start from.")
    _env: dict[str, str] = PrivateAttr(default_factory=dict)  # interpolated ${NAME} values, kept out of outputs
    _origin: tuple[Path, Any] | None = PrivateAttr(None)  # the file and its YAML nodes, for error lines

    def public(self) -> dict:
        """The spec as JSON, with interpolated environment values shown as ${NAME} and URL credentials
        as ***: what manifest.json and the card may show."""
        return redact(self.model_dump(mode="json"), self._env)

    def where(self, *loc: str | int) -> str:
        """`spec.yaml:LINE: gold.path` for an error about the value at `loc`."""
        dotted = ".".join(str(p) for p in loc)
        if self._origin is None:
            return f"spec: {dotted}"
        path, node = self._origin
        return f"{path}:{line_of(node, loc)}: {dotted}"

    def shown(self, text: str) -> str:
        """`text` (a name, a description, an error) as it may be written or printed."""
        return redact(text, self._env)

    @model_validator(mode="before")
    @classmethod
    def _single_judge(cls, data: Any) -> Any:
        """`judge:` (one judge) is accepted as shorthand for `judges: [...]`."""
        if isinstance(data, dict) and "judge" in data:
            if "judges" in data:
                raise ValueError("give 'judge' or 'judges', not both")
            data = {**data, "judges": [data["judge"]]}
            del data["judge"]
        return data

    @model_validator(mode="after")
    def _unique_judge_names(self) -> "Spec":
        names = [judge_name(j) for j in self.judges]
        if len(set(names)) != len(names):
            raise ValueError(f"judge names must differ (got {names}); set 'name' on each judge")
        return self

    @model_validator(mode="after")
    def _requests_bounded(self) -> "Spec":
        """The prompts are not known yet, but one prompt's requests are: a spec whose single prompt would
        exceed max_requests is refused now (the build checks the real count once the prompts are read)."""
        if self.requests_per_prompt() > self.max_requests:
            raise ValueError(f"one prompt would take {self.requests_per_prompt():,} requests (n x generators, "
                             f"and every judge on each pair of candidates), more than max_requests "
                             f"({self.max_requests:,})")
        return self

    @model_validator(mode="after")
    def _judges_see_every_turn(self) -> "Spec":
        """A multi-turn build's judges compare whole conversations: a custom template must show them."""
        if self.generate is not None and self.generate.turns > 1:
            for i, judge in enumerate(self.judges):
                if judge.prompt is not None and "{conversation}" not in judge.prompt:
                    raise ValueError(f"judges.{i}.prompt: a multi-turn build (generate.turns "
                                     f"{self.generate.turns}) needs {{conversation}} in a judge's template, so the "
                                     "judge sees every turn")
        return self

    def requests_per_prompt(self) -> int:
        """Requests one prompt costs, before re-asks: the turns before the last (multi-turn), its candidates, and
        every judge's verdicts on them."""
        if self.generate is None:
            return 0
        candidates = self.generate.n * (len(self.generate.backends) or 1)
        asks = [candidates if j.kind in ("pointwise", "reward_model") else comb(candidates, 2) * (2 if j.swap else 1)
                for j in self.judges]
        return self.generate.rollout_requests() + candidates + sum(asks)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def redact(value: Any, secrets: dict[str, str]) -> Any:
    """`value` (JSON-like) with every interpolated environment value put back as `${NAME}` (longest
    first, so a value inside another does not split it) and credentials in URLs as ***."""
    if isinstance(value, str):
        for name, secret in sorted(secrets.items(), key=lambda item: -len(item[1])):
            if secret:
                value = value.replace(secret, "${" + name + "}")
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def json_schema() -> dict:
    """The spec's JSON Schema, for editors (`prefdata spec-schema > spec.schema.json`)."""
    schema = Spec.model_json_schema()
    schema.get("properties", {}).pop("base_dir", None)
    return schema


def load_spec(path: str | Path) -> Spec:
    """Read a spec: bounded YAML, `${NAME}` from the environment, then the models' checks."""
    path = Path(path)
    loaded = load(path, what="spec", interpolate=True)
    if not isinstance(loaded.data, dict):
        raise PrefdataError(f"{path}: a spec is a YAML mapping")
    try:
        spec = Spec.model_validate({**loaded.data, "base_dir": path.parent})
    except ValidationError as exc:
        raise PrefdataError(f"{path}:{describe(exc, loaded.node, Spec)}") from None
    for loc, value in _non_finite(loaded.data):  # what the models take as they are (curate, validation, ...)
        dotted = ".".join(map(str, loc))
        raise PrefdataError(f"{path}:{line_of(loaded.node, loc)}: {dotted}: {value} is not a finite number")
    spec._env, spec._origin = loaded.env, (path, loaded.node)
    return spec


def _non_finite(value: Any, loc: tuple = ()) -> Iterator[tuple[tuple, float]]:
    """Every NaN or infinity in the parsed YAML: no key of a spec has a use for one (a `.nan` margin
    compares false with everything and silently drops every pair)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, loc + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, loc + (index,))


def describe(exc: ValidationError, node: Any, model: type[BaseModel]) -> str:
    """`LINE: dotted.path: message` for a model's first error; an unknown key gets the nearest known one."""
    errors = exc.errors()
    # a misspelt key also leaves its real one missing: name the misspelling, with its near match
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    dotted = ".".join(str(p) for p in loc) or "(top)"
    message = err["msg"]
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        names = _known_keys(model, loc[:-1])
        near = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        message = f"unknown key {loc[-1]!r}" + (f" (did you mean {near[0]!r}?)" if near else
                                               f" (known: {', '.join(sorted(names))})" if names else "")
    return f"{line_of(node, loc)}: {dotted}: {message}"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The Pydantic models an annotation can hold (through Optional, list, dict, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed at `loc` (a Pydantic error location without its last part)."""
    models = [model]
    for part in loc:
        if not isinstance(part, str):
            continue  # a list index
        inner = [m for cls in models if part in cls.model_fields for m in _models_in(cls.model_fields[part].annotation)]
        if inner:
            models = inner
        else:  # a dict key, or a union's tag (curate.0.filter): pick the member the tag names
            tagged = [cls for cls in models if getattr(cls.model_fields.get("step"), "default", None) == part]
            models = tagged or models
    return sorted({name for cls in models for name, f in cls.model_fields.items() if not f.exclude}
                  | ({"judge"} if models == [Spec] else set()))
