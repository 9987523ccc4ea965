"""What prefdata's vLLM backend costs over vLLM's own `LLM.chat`: one engine, the same prompts and sampling
parameters (seeded, so both paths generate the same tokens), driven directly and through `VLLMBackend` +
`run_requests` with a fresh request cache each round (cache keys, a SQLite commit, the answers' bookkeeping:
what a build pays). Rounds alternate vLLM / ours after a warm-up of each; the median of each is reported,
in generated tokens per second. The last line is JSON with `ratio` = ours / vLLM, and
`ours_outside_vllm_ms`: the time our path spends outside `LLM.chat` (what prefdata adds, measured
directly, so it does not drown in the rounds' noise on a shared machine).

Run it with the vLLM venv (bash ci/vllm_env.sh), on a CPU or a GPU:

    VLLM_CPU_KVCACHE_SPACE=1 .venv-vllm/bin/python benchmarks/vllm_overhead.py [--prompts 64] [--max-tokens 64]
        [--rounds 3] [--logprobs 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz"
ENGINE = {"enforce_eager": True, "max_model_len": 1024, "seed": 0}


def prompts(count: int) -> list[list[dict]]:
    """Short single-turn prompts: the quickstart's, then HH-RLHF's first human turns when more are asked."""
    found = [json.loads(line)["prompt"] for line in (ROOT / "examples" / "quickstart" / "prompts.jsonl").open()]
    if len(found) < count and HH.is_file():
        with gzip.open(HH, "rt", encoding="utf-8") as f:
            for line in f:
                human = json.loads(line)["chosen"].split("\n\nHuman: ")[1].split("\n\nAssistant:")[0]
                found.append(human[:400])
                if len(found) >= count:
                    break
    return [[{"role": "user", "content": p if isinstance(p, str) else str(p)}] for p in found[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logprobs", type=int, default=0, help="alternatives per token, both paths")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded SmolLM2)")
    args = parser.parse_args()

    from vllm import SamplingParams as VllmParams

    from prefdata.backends import ChatRequest, RequestCache, SamplingParams, run_requests
    from prefdata.backends.embedded import pull
    from prefdata.backends.vllm_backend import VLLMBackend, _engine

    model = args.model or str(pull())
    backend = VLLMBackend(model, engine_args=ENGINE)
    start = time.perf_counter()
    llm = _engine(model, json.dumps(ENGINE, sort_keys=True))  # the engine both paths share
    load = time.perf_counter() - start
    convos = prompts(args.prompts)
    params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=11, logprobs=args.logprobs)
    requests = [ChatRequest.of(c, params=params) for c in convos]
    direct = VllmParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=11,
                        logprobs=args.logprobs or None)

    chat, inside = llm.chat, [0.0]

    def timed_chat(*args, **kwargs):  # our path's time inside vLLM; the rest of its time is ours
        begin = time.perf_counter()
        try:
            return chat(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - begin

    llm.chat = timed_chat  # this instance only (the benchmark's), so our backend's calls are timed

    def theirs() -> tuple[float, int]:
        begin = time.perf_counter()
        outputs = chat(convos, [direct] * len(convos), use_tqdm=False)
        return time.perf_counter() - begin, sum(len(o.outputs[0].token_ids) for o in outputs)

    def ours(folder: str, n: int) -> tuple[float, int]:
        cache = RequestCache(Path(folder) / f"cache-{n}.sqlite")  # fresh: every request reaches the engine
        begin, inside[0] = time.perf_counter(), 0.0
        answers = run_requests(backend, requests, cache)
        elapsed = time.perf_counter() - begin
        overhead.append(elapsed - inside[0])
        assert all(a.error is None for a in answers), [a.error for a in answers if a.error][:3]
        if args.logprobs:  # the per-token texts join to the answer (the interface's promise)
            assert all("".join(t for t, _, _ in a.logprobs) == a.text for a in answers)
        return elapsed, sum(a.tokens_out for a in answers)

    rates: dict[str, list[float]] = {"vllm": [], "ours": []}
    overhead: list[float] = []
    tokens: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        theirs(), ours(folder, -1)  # warm-up: the first batch of an engine is slow
        for n in range(args.rounds):
            for name, run in (("vllm", theirs), ("ours", lambda n=n: ours(folder, n))):
                elapsed, count = run()
                rates[name].append(count / elapsed)
                tokens[name] = count
                extra = f" ({overhead[-1] * 1000:.0f} ms outside vLLM)" if name == "ours" else ""
                print(f"round {n + 1} {name:>4}: {count} tokens in {elapsed:6.2f} s = {count / elapsed:7.1f} tok/s"
                      + extra, flush=True)
    median = {name: statistics.median(r) for name, r in rates.items()}
    result = {"ratio": round(median["ours"] / median["vllm"], 4), "ours_tok_s": round(median["ours"], 1),
              "vllm_tok_s": round(median["vllm"], 1), "same_tokens": tokens["ours"] == tokens["vllm"],
              "prompts": len(convos), "max_tokens": args.max_tokens, "rounds": args.rounds,
              "logprobs": args.logprobs, "engine_load_s": round(load, 1),
              "ours_outside_vllm_ms": round(statistics.median(overhead[1:]) * 1000, 1)}
    print(json.dumps(result))


if __name__ == "__main__":  # vLLM starts its engine in child processes, which re-import this module
    main()
