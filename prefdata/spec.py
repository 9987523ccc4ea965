"""The build spec (`spec.yaml`): Pydantic models, every field documented, unknown keys rejected.

Relative paths in a spec are relative to the spec file. Errors name the YAML path and line.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import PrivateAttr, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prefdata.curate.config import DedupeConfig, StepConfig, expand_shorthand
from prefdata.errors import PrefdataError
from prefdata.validators.thresholds import Thresholds


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendSpec(Strict):
    kind: Literal["embedded", "transformers", "openai", "anthropic", "vllm"] = Field(
        "embedded", description="embedded: SmolLM2-135M-Instruct, offline. transformers: any local or Hub model. "
                                "openai: OpenAI or any OpenAI-compatible server (base_url). anthropic: the "
                                "Messages API. vllm: offline vllm.LLM on GPUs.")
    model: str | None = Field(None, description="Model id or folder (all kinds but embedded).")
    batch_size: int = Field(8, ge=1, description="Requests per batch; each batch is cached before the next.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ... (transformers, embedded)")
    base_url: str | None = Field(None, description="Server URL, e.g. http://127.0.0.1:8000/v1 (openai, anthropic).")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (default "
                                                      "OPENAI_API_KEY / ANTHROPIC_API_KEY). Keys never go in a spec.")
    concurrency: int = Field(8, ge=1, description="Requests in flight at once (openai, anthropic).")
    rpm: float | None = Field(None, gt=0, description="Client-side limit: requests per minute.")
    tpm: float | None = Field(None, gt=0, description="Client-side limit: tokens per minute (estimated).")
    timeout_s: float = Field(60, gt=0, description="Timeout of one HTTP request, in seconds.")
    max_attempts: int = Field(6, ge=1, description="Tries per request on 429, 5xx, timeouts and connection errors.")
    retry_initial_s: float = Field(1.0, ge=0, description="First backoff wait; doubles each retry, with jitter.")
    retry_max_s: float = Field(60.0, ge=0, description="Longest wait between tries (Retry-After included).")
    schema_retries: int = Field(2, ge=0, le=5, description="Re-asks when an answer does not match its JSON schema.")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for vllm.LLM (vllm).")

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError("a key never goes in a spec: put it in an environment variable and name that "
                             "variable with api_key_env")
        return data

    @model_validator(mode="after")
    def _model_for_transformers(self) -> "BackendSpec":
        if self.kind != "embedded" and not self.model:
            raise ValueError(f"kind {self.kind!r} needs 'model'")
        return self


class SourceSpec(Strict):
    path: str = Field(description="Prompts or preference data: file, dataset folder or Hub id.")
    format: str | None = Field(None, description="Input format; detected when omitted.")
    split: str | None = Field(None, description="Split of a dataset folder or Hub dataset.")
    limit: int | None = Field(None, ge=1, description="Read at most this many rows.")
    on_error: Literal["raise", "skip"] = Field("raise", description="skip: bad records go to dropped.parquet "
                                                                    "with their reason instead of stopping.")


class ContrastSpec(Strict):
    good: str = Field(description="System prompt of the even samples.")
    bad: str = Field(description="System prompt of the odd samples.")


class GenerateSpec(Strict):
    backend: BackendSpec = Field(default_factory=BackendSpec)
    n: int = Field(2, ge=2, description="Candidates per prompt.")
    temperatures: list[float] = Field([0.7, 1.0], min_length=1,
                                      description="Sampling temperatures, used in turn across the n candidates.")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    system_prompt: str | None = Field(None, description="System message put before every prompt.")
    seed: int = 0
    backends: list[BackendSpec] = Field(default_factory=list, description="Several generator models; each "
                                        "writes n candidates per prompt (default: `backend` alone).")
    contrast: ContrastSpec | None = Field(None, description="Alternate a good and a bad system prompt across "
                                                            "the n samples.")


class RubricSpec(Strict):
    aspects: list[str] = Field(["helpfulness", "accuracy", "clarity", "safety"], min_length=1,
                               description="Named aspects a pointwise judge scores (UltraFeedback style).")
    scale: Literal[5, 10] = Field(10, description="Scores run from 1 to this.")


class JudgeSpec(Strict):
    name: str | None = Field(None, description="Judge name in tables (default: model name and kind).")
    kind: Literal["pairwise", "pointwise"] = Field(
        "pairwise", description="pairwise: A vs B with a winner. pointwise: a rubric score per answer.")
    backend: BackendSpec = Field(default_factory=BackendSpec)
    max_tokens: int = Field(96, ge=8, description="Longest verdict, in tokens.")
    swap: bool = Field(True, description="Judge each pairwise comparison in both orders (position-bias check).")
    rubric: RubricSpec = Field(default_factory=RubricSpec)
    prompt: str | None = Field(None, description="Custom user-prompt template: {conversation}, {answer_a}, "
                                                 "{answer_b} (pairwise) or {answer}, {aspects}, {scale} (pointwise), "
                                                 "and {nonce} for the block tags.")
    retries: int = Field(1, ge=0, le=3, description="Corrective re-asks when a verdict cannot be read.")

    @model_validator(mode="after")
    def _template_fields(self) -> "JudgeSpec":
        """A template with an unknown {field} (often a JSON example with single braces) would fail only
        after the candidates were paid for: refuse it when the spec is read."""
        if self.prompt is not None:
            allowed = TEMPLATE_FIELDS[self.kind]
            try:
                used = {name for _, name, _, _ in string.Formatter().parse(self.prompt) if name is not None}
            except ValueError as exc:
                raise ValueError(f"prompt: {exc} (write literal braces as {{{{ and }}}})") from None
            unknown = sorted(used - allowed)
            if unknown:
                raise ValueError(f"prompt: unknown field {{{unknown[0]}}} for a {self.kind} judge (fields: "
                                 f"{', '.join(sorted(allowed))}; write literal braces as {{{{ and }}}})")
        return self


TEMPLATE_FIELDS = {"pairwise": {"conversation", "answer_a", "answer_b", "nonce"},
                   "pointwise": {"conversation", "answer", "aspects", "scale", "nonce"}}


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


class GoldSpec(Strict):
    path: str = Field(description="Known-answer pairs (any pairwise format): chosen must win.")
    format: str | None = None
    min_accuracy: float = Field(0.6, ge=0, le=1, description="A judge below this accuracy is flagged or dropped.")
    action: Literal["flag", "drop"] = Field("flag", description="flag: report it. drop: leave it out of the panel.")


class OutputSpec(Strict):
    dir: str = Field("out", description="Dataset folder to write.")
    form: Literal["conversational", "standard"] = "conversational"


class PriceSpec(Strict):
    input: float = Field(ge=0, description="USD per 1M input tokens.")
    output: float = Field(ge=0, description="USD per 1M output tokens.")


class Spec(Strict):
    name: str = Field(description="Dataset name, used in the card.")
    description: str = ""
    sources: list[SourceSpec] = Field(min_length=1)
    generate: GenerateSpec | None = Field(
        default_factory=GenerateSpec, description="null: no generation or judging; the sources are preference "
                                                  "pairs to curate.")
    judges: list[JudgeSpec] = Field(default_factory=lambda: [JudgeSpec()], min_length=1,
                                    description="The judge panel (one judge is a panel of one).")
    panel: PanelSpec = Field(default_factory=PanelSpec)
    gold: GoldSpec | None = Field(None, description="Known-answer pairs mixed in to measure each judge.")
    curate: list[StepConfig] = Field(
        default_factory=lambda: [DedupeConfig()],
        description="Curation steps, in order: dedupe, near_dedupe, filter, decontaminate, length_balance, split "
                    "(a name, or a mapping with `step:` and options; see prefdata.curate.config).")
    _curate_shorthand = field_validator("curate", mode="before")(expand_shorthand)
    output: OutputSpec = Field(default_factory=OutputSpec)
    validation: Thresholds = Field(default_factory=Thresholds,
                                   description="Thresholds of `prefdata validate` (validators.thresholds).")
    cache: str | None = Field(None, description="Request cache file (default: PREFDATA_HOME/cache/requests.sqlite).")
    prices: dict[str, PriceSpec] = Field(default_factory=dict,
                                         description="USD per 1M tokens per model; overrides the built-in table.")
    max_cost: float | None = Field(None, gt=0, description="Stop sending requests once this many USD are spent; "
                                                           "everything finished so far is kept.")
    base_dir: Path = Field(Path("."), exclude=True, description="Folder relative paths start from.")
    _env: dict[str, str] = PrivateAttr(default_factory=dict)  # interpolated ${NAME} values, kept out of outputs

    def public(self) -> dict:
        """The spec as JSON, with interpolated environment values shown as ${NAME}."""
        return redact(self.model_dump(mode="json"), self._env)

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

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def _line_of(node: yaml.Node, loc: tuple) -> int | None:
    """The line of the YAML node at `loc` (or of its nearest parent that exists)."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == part] or [k for k, _ in node.value if k.value == part]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(text: str, path: Path) -> tuple[str, dict[str, str]]:
    """`${NAME}` (or `${NAME:-default}`) from the environment; returns the text and the values used,
    so that they can be kept out of anything written (manifest, card)."""
    used: dict[str, str] = {}

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            used[name] = os.environ[name]
            return os.environ[name]
        if default is not None:
            return default
        line = text.count("\n", 0, match.start()) + 1
        raise PrefdataError(f"{path}:{line}: environment variable {name} is not set (write ${{{name}:-default}} "
                            f"for a default)")

    return _ENV.sub(value, text), used


def redact(value: Any, secrets: dict[str, str]) -> Any:
    """`value` (JSON-like) with every interpolated environment value put back as `${NAME}`."""
    if isinstance(value, str):
        for name, secret in secrets.items():
            if secret:
                value = value.replace(secret, "${" + name + "}")
        return value
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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PrefdataError(f"{path}: cannot read spec ({exc})") from None
    text, used = interpolate(text, path)
    try:
        node = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise PrefdataError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise PrefdataError(f"{path}: a spec is a YAML mapping")
    try:
        spec = Spec.model_validate({**data, "base_dir": path.parent})
        spec._env = used
        return spec
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        dotted = ".".join(str(p) for p in loc) or "(top)"
        line = _line_of(node, loc) if node is not None else None
        raise PrefdataError(f"{path}:{line}: {dotted}: {err['msg']}") from None
