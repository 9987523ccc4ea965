"""A generated corpus of hostile build specs (issue 12 §6, §7), run through `prefdata build` by the harness.

Each case gets its own folder with the spec and the prompts file it needs. Most run `build --dry-run`;
those that run `build` itself fail before any model is loaded, or point an OpenAI backend at a closed
port on 127.0.0.1 (refused at once: nothing slow runs). A case that must fail names the words its one-line
error must hold (`MESSAGES`), so a clean error about the wrong thing does not count as right.

    python tests/hostile/specs.py        # prints every outcome and the counts
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: tests/ on the path, as pytest puts it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostile.harness import Case, Outcome, report, run_case, summary  # noqa: E402

PROMPTS = ["What is the capital of France?", "Name a prime number above 10.", "Give one tip for sleeping well."]
HEAD = "name: hostile\nsources:\n  - path: prompts.jsonl\ncache: cache.sqlite\n"
PASSWORD = "pw-Hostile-93kq"
# nine anchors of nine aliases each: 9^9 (387 million) strings once expanded (3.2 GB and growing, before)
LAUGHS = "      l0: &l0 [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
    f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Spec:
    """One hostile spec: its text (or bytes), how it is run, what must come out."""

    name: str
    text: str | bytes
    message: str | None = None  # the one-line error must hold this; None: the command must succeed
    build: bool = False  # run `build` itself rather than `build --dry-run`
    env: dict[str, str] = field(default_factory=dict)
    ok_codes: tuple[int, ...] = (0,)
    check: object = None  # for a case that must succeed: (folder, CompletedProcess) -> complaint or None
    extra_files: dict[str, str] = field(default_factory=dict)


def _openai(url: str, **extra) -> str:
    options = ", ".join(f"{k}: {v}" for k, v in {"kind": "openai", "model": "m", "base_url": f"'{url}'",
                                                 "max_attempts": 1, **extra}.items())
    return "{" + options + "}"


def _yaml_cases() -> list[Spec]:
    return [
        Spec("flow_nested_3000_deep", HEAD + "description: " + "[" * 3000 + "]" * 3000 + "\n",
             "spec.yaml:5: nested deeper than 64 levels"),
        Spec("block_nested_200_deep", HEAD + "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n",
             "nested deeper than 64 levels"),
        Spec("billion_laughs_in_engine_args", HEAD + "generate:\n  backend:\n    kind: vllm\n    model: m\n"
             "    engine_args:\n" + LAUGHS, "spec.yaml:15: more than 100,000 values once alias *l4 is expanded"),
        Spec("quadratic_aliases", HEAD + "a: &a [" + ", ".join(["x"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 1000)
             + "]\n", "more than 100,000 values once alias *a is expanded"),
        Spec("alias_nested_past_depth", HEAD + "a: &d " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 30 + "*d"
             + "]" * 30 + "\n", "alias *d nests deeper than 64 levels"),
        Spec("alias_cycle_in_engine_args", HEAD + "generate:\n  backend:\n    kind: vllm\n    model: m\n"
             "    engine_args: &a {self: *a}\n", "spec.yaml:9: alias *a is inside the value it names (a cycle)"),
        Spec("duplicate_top_key", HEAD + "name: other\n", "spec.yaml:5: duplicate key 'name' (first on line 1"),
        Spec("duplicate_nested_key", HEAD + "generate:\n  n: 2\n  max_tokens: 64\n  n: 8\n",
             "spec.yaml:8: duplicate key 'n' (first on line 6"),
        Spec("duplicate_flow_key", HEAD + "generate: {n: 2, n: 3}\n", "duplicate key 'n'"),
        Spec("top_level_list", "- name: x\n- sources: []\n", "a spec is a YAML mapping"),
        Spec("empty_file", "", "a spec is a YAML mapping"),
        Spec("two_documents", HEAD + "---\n" + HEAD, "expected a single document in the stream"),
        Spec("python_object_tag", HEAD + "description: !!python/object/apply:os.system ['touch pwned']\n",
             "could not determine a constructor for the tag"),
        Spec("invalid_utf8", HEAD.encode() + b"description: caf\xe9\n", "cannot read spec"),
        Spec("nul_byte", HEAD + "description: a\x00b\n", "invalid YAML"),
        Spec("two_megabyte_comment", HEAD + "#" + "x" * (2 << 20) + "\n", "more than a spec may hold"),
        Spec("thirteenth_month", HEAD + "description: 2024-13-45\n", "spec.yaml:5: invalid YAML (month must be"),
        Spec("five_thousand_digit_integer", HEAD + "max_requests: " + "9" * 5000 + "\n", "4300 digits"),
        Spec("tab_indentation", HEAD + "generate:\n\tn: 2\n", "invalid YAML"),
        Spec("undefined_alias", HEAD + "generate: *nowhere\n", "found undefined alias"),
        Spec("unhashable_key", HEAD + "? [a, b]\n: 1\n", "found unhashable key"),
        Spec("integer_key", HEAD + "1: one\n", "spec.yaml:5: 1: Keys should be strings"),
        Spec("byte_order_mark_and_crlf", "\ufeff" + HEAD.replace("\n", "\r\n")),
        Spec("sources_empty", HEAD.replace("sources:\n  - path: prompts.jsonl\n", "sources: []\n"),
             "sources: List should have at least 1 item"),
        Spec("judges_a_mapping", HEAD + "judges: {kind: pairwise}\n", "judges: Input should be a valid list"),
        Spec("extension_key_with_an_anchor", HEAD + "x-backend: &b {kind: embedded}\njudges:\n  - backend: *b\n",
             "x-backend: unknown key 'x-backend'"),
        Spec("anchors_and_merge_keys_are_fine", HEAD + "judges:\n  - {name: j1, backend: &b {kind: embedded, "
             "batch_size: 4}}\n  - name: j2\n    backend:\n      <<: *b\n      batch_size: 2\n"),
    ]


def _env_cases() -> list[Spec]:
    def no_budget(folder: Path, done) -> str | None:
        found = json.loads(done.stdout)
        return None if found["max_cost"] is None else f"the environment value set max_cost: {found['max_cost']}"

    return [
        Spec("env_variable_not_set", HEAD + "description: ${PD_HOSTILE_UNSET}\n",
             "spec.yaml:5: environment variable PD_HOSTILE_UNSET is not set"),
        Spec("env_variable_in_a_comment", HEAD + "# export ${PD_HOSTILE_UNSET} before a real run\n"),
        Spec("env_value_with_newlines_cannot_add_keys",
             HEAD.replace("name: hostile", "name: ${PD_HOSTILE_NAME}"),
             env={"PD_HOSTILE_NAME": "x\nmax_cost: 0.0001\nprices: {SmolLM2-135M-Instruct: {input: 1, output: 1}}"},
             check=no_budget),
        Spec("env_value_into_a_number", HEAD + "generate: {n: '${PD_HOSTILE_N}'}\n",
             "generate.n: Input should be a valid integer", env={"PD_HOSTILE_N": "2\nmax_requests: 1"}),
        Spec("env_default_used", HEAD + "description: ${PD_HOSTILE_UNSET:-a default}\n"),
    ]


def _bound_cases() -> list[Spec]:
    rows = [
        ("n_1e15", "generate: {n: 1.0e+15}", "generate.n: Input should be less than or equal to 64"),
        ("n_a_million", "generate: {n: 1000000}", "generate.n: Input should be less than or equal to 64"),
        ("n_written_1e15", "generate: {n: 1e15}", "generate.n: Input should be a valid integer"),
        ("temperature_nan", "generate: {temperatures: [.nan]}", "generate.temperatures.0: Input should be a finite"),
        ("temperature_negative", "generate: {temperatures: [0.7, -1]}", "generate.temperatures.1: Input should be "
                                                                        "greater than or equal to 0"),
        ("temperature_infinite", "generate: {temperatures: [.inf]}", "generate.temperatures.0: Input should be a "
                                                                     "finite number"),
        ("temperature_absurd", "generate: {temperatures: [1000]}", "less than or equal to 2"),
        ("top_p_zero", "generate: {top_p: 0}", "generate.top_p: Input should be greater than 0"),
        ("max_tokens_a_billion", "generate: {max_tokens: 1000000000}", "generate.max_tokens: Input should be less"),
        ("rpm_one_a_week", f"generate: {{backend: {_openai('http://127.0.0.1:9/v1', rpm=0.0001)}}}",
         "generate.backend.rpm: Input should be greater than or equal to 1"),
        ("tpm_ten", f"generate: {{backend: {_openai('http://127.0.0.1:9/v1', tpm=10)}}}",
         "generate.backend.tpm: Input should be greater than or equal to 1000"),
        ("timeout_zero", f"generate: {{backend: {_openai('http://127.0.0.1:9/v1', timeout_s=0)}}}",
         "generate.backend.timeout_s: Input should be greater than or equal to 1"),
        ("concurrency_a_million", f"generate: {{backend: {_openai('http://127.0.0.1:9/v1', concurrency=10**6)}}}",
         "generate.backend.concurrency: Input should be less than or equal to 1024"),
        ("batch_size_a_billion", "generate: {backend: {batch_size: 1000000000}}", "generate.backend.batch_size"),
        ("price_infinite", "prices: {m: {input: .inf, output: 1}}", "prices.m.input: Input should be a finite"),
        ("max_cost_nan", "max_cost: .nan", "max_cost: Input should be a finite number"),
        ("max_cost_overflows_to_infinity", "max_cost: 1.0e+400", "max_cost: Input should be a finite number"),
        ("seed_negative", "generate: {seed: -5}", "generate.seed: Input should be greater than or equal to 0"),
        ("curate_margin_nan", "curate:\n  - {step: filter, min_margin: .nan}", "finite number"),
        ("validation_threshold_infinite", "validation: {min_margin: -.inf}", "finite number"),
        ("one_prompt_past_max_requests", "generate: {n: 64, backends: [" + ", ".join(
            f"{{kind: transformers, model: m{i}}}" for i in range(16)) + "]}",
         "one prompt would take 1,048,576 requests"),
        ("real_count_past_max_requests", "max_requests: 5", "max_requests: this build would send 12 requests"),
        ("base_url_without_scheme", f"generate: {{backend: {_openai('127.0.0.1:8000/v1')}}}",
         "is not an http:// or https:// URL with a host"),
    ]
    return [Spec(name, HEAD + extra + "\n", message) for name, extra, message in rows]


def _template_cases() -> list[Spec]:
    rows = [
        ("template_format_spec_3_6_gb", "{answer_a:>900000000} {answer_b}", "{answer_a:>900000000}: conversions"),
        ("template_conversion_z", "{answer_a!z} {answer_b}", "{answer_a!z}: conversions"),
        ("template_format_d", "{answer_a:d} {answer_b}", "{answer_a:d}: conversions"),
        ("template_attribute_access", "{answer_a.__class__.__init__} {answer_b}",
         "unknown field {answer_a.__class__.__init__}"),
        ("template_without_answers", "Which answer is better?", "a pairwise judge's template must show {answer_a}"),
        ("template_unbalanced_brace", "{answer_a} {answer_b", "expected '}' before end of string"),
    ]
    return [Spec(name, HEAD + f"judges:\n  - prompt: {json.dumps(template)}\n", "judges.0: Value error, prompt: "
                 + message) for name, template, message in rows]


def _file_cases() -> list[Spec]:
    return [
        Spec("gold_file_missing", HEAD + "gold: {path: gold.jsonl}\n", "spec.yaml:5: gold.path:"),
        Spec("gold_file_missing_build", HEAD + "gold: {path: gold.jsonl}\n", "gold.path:", build=True),
        Spec("gold_file_not_pairs", HEAD + "gold: {path: prompts.jsonl}\n", "gold items must be preference pairs"),
        Spec("cache_is_a_folder", HEAD.replace("cache.sqlite", "."), "is a folder; name a file"),
        Spec("cache_is_a_folder_build", HEAD.replace("cache.sqlite", "."), "is a folder; name a file", build=True),
        Spec("cache_is_not_sqlite", HEAD.replace("cache.sqlite", "prompts.jsonl"), "is not a SQLite file"),
        Spec("cache_under_a_file", HEAD.replace("cache.sqlite", "prompts.jsonl/c.sqlite"), "is a file, not a folder"),
        Spec("source_missing", HEAD.replace("prompts.jsonl", "nothing.jsonl"), "sources.0.path:"),
        Spec("source_format_unknown", HEAD.replace("path: prompts.jsonl", "{path: prompts.jsonl, format: sharegtp}"),
             "sources.0.format: unknown format 'sharegtp'"),
        Spec("source_format_undetectable", HEAD.replace("prompts.jsonl", "odd.jsonl"),
             "set sources[0].format in the spec", extra_files={"odd.jsonl": '{"question": "hi"}\n'}),
        Spec("decontamination_set_missing", HEAD + "curate:\n  - {step: decontaminate, eval_sets: [/nonexistent/x]}\n",
             "curate.0.eval_sets.0: /nonexistent/x: no such file"),
        Spec("api_key_in_the_spec", HEAD + "generate: {backend: {kind: openai, model: m, api_key: sk-live-1234567}}\n",
             "a key never goes in a spec"),
        Spec("misspelt_key", HEAD + "generate: {temperature: 0.5}\n", "did you mean 'temperatures'?"),
        Spec("judge_and_judges", HEAD + "judge: {}\njudges: [{}]\n", "give 'judge' or 'judges', not both"),
        Spec("nan_temperature_build", HEAD + "generate: {temperatures: [.nan]}\n", "finite number", build=True),
    ]


def _closed_port_cases() -> list[Spec]:
    def all_failed(folder: Path, done) -> str | None:
        line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        if not line.startswith("error: all 6 generate requests failed") or "connection" not in line:
            return f"not the failed-requests line: {line[:200]}"
        if "pairs written" in done.stderr:
            return "reported pairs written"
        leaked = [str(p) for p in folder.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()
                  and p.name != "spec.yaml"]
        return f"credentials in {leaked}" if leaked or PASSWORD in done.stderr else None

    url = f"http://127.0.0.1:{closed_port()}/v1"
    secret_url = f"http://alice:{PASSWORD}@127.0.0.1:{closed_port()}/v1"
    return [
        Spec("closed_port_every_request_fails", HEAD + f"generate: {{backend: {_openai(url)}}}\n"
             f"judge: {{backend: {_openai(url)}}}\n", build=True, ok_codes=(1,), check=all_failed),
        Spec("closed_port_with_url_credentials", HEAD + f"generate: {{backend: {_openai(secret_url)}}}\n"
             f"judge: {{backend: {_openai(secret_url)}}}\n", build=True, ok_codes=(1,), check=all_failed),
    ]


def specs() -> list[Spec]:
    return _yaml_cases() + _env_cases() + _bound_cases() + _template_cases() + _file_cases() + _closed_port_cases()


def cases(root: Path) -> tuple[list[Case], dict[str, str]]:
    """Write every spec under `root`; returns the harness cases and the message each error must hold."""
    made, messages = [], {}
    for spec in specs():
        folder = root / spec.name
        folder.mkdir(parents=True)
        (folder / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
        for name, text in spec.extra_files.items():
            (folder / name).write_text(text)
        path = folder / "spec.yaml"
        path.write_bytes(spec.text if isinstance(spec.text, bytes) else spec.text.encode())
        argv = ["build", path, "--output", folder / "out"] if spec.build else ["build", path, "--dry-run", "--json"]
        check = (lambda done, spec=spec, folder=folder: spec.check(folder, done)) if spec.check else None
        env = {"PREFDATA_HOME": str(root / ".home"), **spec.env}
        made.append(Case(spec.name, argv, expect="error" if spec.message else "ok", check=check, timeout=60,
                         ok_codes=spec.ok_codes, env=env))
        if spec.message:
            messages[spec.name] = spec.message
    return made, messages


def wrong_messages(outcomes: list[Outcome], messages: dict[str, str]) -> list[str]:
    """Clean errors that do not say what the case expects (an error about something else)."""
    return [f"{o.case}: wanted {messages[o.case]!r}, got {o.detail[:200]!r}" for o in outcomes
            if o.kind == "clean_error" and messages.get(o.case) not in o.detail]


def run_corpus(workers: int = 4) -> tuple[list[Outcome], dict[str, str]]:
    """Every case, a few at a time (each is its own process, mostly waiting on imports)."""
    from concurrent.futures import ThreadPoolExecutor

    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="hostile-specs-") as tmp:
        made, messages = cases(Path(tmp))
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda case: run_case(case, root), made)), messages


if __name__ == "__main__":
    outcomes, messages = run_corpus()
    for outcome in outcomes:
        print(f"{outcome.kind:15} {outcome.case}: {outcome.detail.splitlines()[-1][:150] if outcome.detail else ''}")
    for line in wrong_messages(outcomes, messages):
        print("wrong message:", line)
    print(report(outcomes).splitlines()[-1])
    print(summary(outcomes))
