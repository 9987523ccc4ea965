"""Benchmark: grammar engines for constrained JSON decoding on the embedded model (SmolLM2-135M, CPU).

For the pairwise VERDICT_SCHEMA and the rubric `score_schema` of prefdata.judge.prompts, each in the form the
judge sends a grammar backend (`prompts.for_grammar`: properties in the order of `required`, integer scores
within the scale, a bounded rationale) and as plain as prompts.py defines it, and for each engine (xgrammar,
llguidance, outlines-core through outlines): the grammar's compile time, the time of one constrained batch of
N real judge requests (LLaMA-Factory's DPO demo pairs from the shared data, greedy) against unconstrained
`generate` on the same requests, the share of answers that parse and validate against the schema
(`structured.parse`), and the engine's install footprint (its files and those of the dependencies it pulls in).

Measured here on 2026-11-30 (`OMP_NUM_THREADS=1 python benchmarks/grammar_engines.py --n 2`: N=2, max_tokens 40,
2 CPU cores shared with three other jobs, load average 8 to 11, so batch times are noise of +-2x):

| engine | compile pairwise / rubric (s) | batch pairwise / rubric (s) | valid | footprint |
|---|---|---|---|---|
| none (unconstrained) | - | 108 / 212 | 0 of 4 | - |
| xgrammar 0.2.9 | 1.6 / 2.3 | 64 / 214 | 4 of 4 | 1061 MB (triton 999 MB, tvm-ffi 13 MB) |
| llguidance 1.9.1 | 4.6 / 13.0 | 206 / 144 | 4 of 4 | 7.9 MB |
| outlines 1.3.3 | 10.2 / 28.0 | 151 / 256 | 4 of 4 | 6.9 MB (+ outlines-core, diskcache, genson) |

Compile times include building the engine's view of the 49,152-token vocabulary (llguidance's `from_tokenizer`
took 3.6 s alone, then a schema 0.04 s: prefdata caches the first per tokenizer, the second per schema).
Every engine made every answer strict, schema-valid JSON; unconstrained, none of the answers was. The choice,
llguidance, is explained in prefdata/backends/grammar.py.

    python benchmarks/grammar_engines.py [--n 4] [--max-tokens 40] [--plain] [--engines xgrammar,llguidance,outlines]
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import metadata
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llamafactory" / "dpo_en_demo.json"
DEPENDENCIES = {"xgrammar": ["xgrammar", "apache-tvm-ffi", "triton"], "llguidance": ["llguidance"],
                "outlines": ["outlines", "outlines-core", "diskcache", "genson"]}


def footprint(engine: str) -> float | None:
    """Megabytes on disk of the engine and of the packages it pulls in (not already needed by prefdata)."""
    total = 0
    for name in DEPENDENCIES[engine]:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        total += sum(f.locate().stat().st_size for f in files if Path(f.locate()).is_file())
    return round(total / 1e6, 1)


def requests(n: int, max_tokens: int):
    """n pairwise and n rubric judge requests on real answers (LLaMA-Factory's DPO demo)."""
    from prefdata.backends import ChatRequest, SamplingParams
    from prefdata.judge import prompts

    rows = json.loads(DATA.read_text())[:n]
    if not rows:
        raise SystemExit("no shared data")
    params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_tokens)
    pairwise, rubric = [], []
    aspects = ["helpfulness", "accuracy"]
    for row in rows:
        prompt = [{"role": "user", "content": row["conversations"][-1]["value"][:300]}]
        chosen, rejected = row["chosen"]["value"][:300], row["rejected"]["value"][:300]
        pairwise.append(ChatRequest.of(prompts.pairwise(prompt, chosen, rejected), params=params))
        rubric.append(ChatRequest.of(prompts.pointwise(prompt, chosen, aspects, 10), params=params))
    return {"pairwise": (pairwise, prompts.VERDICT_SCHEMA), "rubric": (rubric, prompts.score_schema(aspects))}


class Masked:
    """A logits processor: one matcher per row, each row's logits masked to what its grammar allows."""

    def __init__(self, engine: str, grammar, tokenizer_info, rows: int, vocab: int):
        self.engine, self.grammar, self.info, self.vocab = engine, grammar, tokenizer_info, vocab
        if engine == "xgrammar":
            import xgrammar as xgr
            self.matchers = [xgr.GrammarMatcher(grammar) for _ in range(rows)]
            self.mask = xgr.allocate_token_bitmask(rows, vocab)
        else:
            import llguidance
            import llguidance.torch as llt
            self.matchers = [llguidance.LLMatcher(tokenizer_info, grammar) for _ in range(rows)]
            self.mask = llt.allocate_token_bitmask(rows, tokenizer_info.vocab_size)
        self.started = False

    def __call__(self, input_ids, scores):
        last = input_ids[:, -1].tolist()
        for i, matcher in enumerate(self.matchers):
            if self.engine == "xgrammar":
                if self.started and not matcher.is_terminated():
                    matcher.accept_token(last[i])
                if matcher.is_terminated():  # the row is done: generate pads it, whatever the mask
                    self.mask[i] = -1
                else:
                    matcher.fill_next_token_bitmask(self.mask, i)
            else:
                import llguidance.torch as llt
                if self.started and not matcher.is_stopped():
                    matcher.consume_token(last[i])
                llt.fill_next_token_bitmask(matcher, self.mask, i)
        self.started = True
        if self.engine == "xgrammar":
            import xgrammar as xgr
            xgr.apply_token_bitmask_inplace(scores, self.mask)
        else:
            import llguidance.torch as llt
            llt.apply_token_bitmask_inplace(scores, self.mask)
        return scores


def compile_grammar(engine: str, schema: dict, tokenizer, vocab: int, model):
    """(compiled grammar, tokenizer info, or a ready processor factory for outlines), and seconds taken."""
    start = time.perf_counter()
    if engine == "xgrammar":
        import xgrammar as xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
        grammar = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=False)
    elif engine == "llguidance":
        import llguidance
        import llguidance.hf
        info = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab)
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
        llguidance.LLMatcher(info, grammar).is_error()  # llguidance compiles lazily: build one matcher
    else:
        import outlines
        from outlines.backends import get_json_schema_logits_processor
        wrapped = outlines.from_transformers(model, tokenizer)
        info, grammar = None, lambda: get_json_schema_logits_processor("outlines_core", wrapped, json.dumps(schema))
        grammar()  # the regex and its index are built here
    return grammar, info, time.perf_counter() - start


def run(batch_requests, schema, engine, tokenizer, network, vocab):
    import torch
    from transformers import LogitsProcessorList

    from prefdata.backends import structured
    from prefdata.backends.transformers_backend import prompt_texts

    texts = prompt_texts(tokenizer, batch_requests)
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    compile_s, processors = 0.0, []
    if engine != "none":
        grammar, info, compile_s = compile_grammar(engine, schema, tokenizer, vocab, network)
        processors = [grammar() if engine == "outlines" else Masked(engine, grammar, info, len(texts), vocab)]
    start = time.perf_counter()
    with torch.no_grad():
        out = network.generate(**batch, max_new_tokens=batch_requests[0].params.max_tokens, do_sample=False,
                               temperature=None, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id,
                               logits_processor=LogitsProcessorList(processors))
    seconds = time.perf_counter() - start
    new = out[:, batch["input_ids"].shape[1]:]
    answers = tokenizer.batch_decode(new, skip_special_tokens=True)
    valid = sum(strict(a) and structured.parse(a, schema)[1] is None for a in answers)  # no repair allowed
    return {"compile_s": round(compile_s, 3), "batch_s": round(seconds, 2), "valid": valid / len(answers),
            "tokens": int((new != tokenizer.pad_token_id).sum())}, answers


def strict(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--engines", default="xgrammar,llguidance,outlines")
    parser.add_argument("--plain", action="store_true", help="also the schemas as prompts.py defines them")
    args = parser.parse_args()

    from prefdata.backends import embedded
    from prefdata.backends.transformers_backend import _load
    from prefdata.judge import prompts

    tokenizer, network, _ = _load(str(embedded.pull()), "cpu")
    vocab = network.config.vocab_size
    results: dict = {"n": args.n, "max_tokens": args.max_tokens, "engines": {}}
    for kind, (batch_requests, schema) in requests(args.n, args.max_tokens).items():
        forms = [("as sent", prompts.for_grammar(schema, args.max_tokens))]
        forms += [("plain", schema)] if args.plain else []
        for form, shaped in forms:
            label = f"{kind} ({form})"
            base, _ = run(batch_requests, shaped, "none", tokenizer, network, vocab)
            results.setdefault("unconstrained", {})[label] = base
            print(f"{label:22} unconstrained  batch {base['batch_s']:6.2f} s  valid {base['valid']:.0%}")
            for engine in args.engines.split(","):
                try:
                    figures, answers = run(batch_requests, shaped, engine, tokenizer, network, vocab)
                except Exception as exc:  # noqa: BLE001 - an engine that fails on a schema is a result
                    figures, answers = {"error": f"{type(exc).__name__}: {exc}"[:200]}, []
                results["engines"].setdefault(engine, {})[label] = figures
                print(f"{label:22} {engine:13}  {json.dumps(figures)}")
                if answers:
                    print(f"{'':22} e.g. {answers[0][:100]!r}")
    for engine in args.engines.split(","):
        results["engines"].setdefault(engine, {})["footprint_mb"] = footprint(engine)
        print(f"{engine}: install footprint {results['engines'][engine]['footprint_mb']} MB")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
