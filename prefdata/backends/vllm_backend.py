"""Offline batched generation with vLLM (`vllm.LLM`), on one or more GPUs (tensor_parallel_size etc.
pass through `engine_args`).

Written against vLLM's current API (0.12+): `LLM.chat` takes a list of conversations and a list of
`SamplingParams`; structured output is `SamplingParams(structured_outputs=StructuredOutputsParams(json=...))`
(the older `guided_decoding` fields were removed in 0.12). A prefill is the final assistant message,
continued with `continue_final_message=True`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from prefdata.backends import structured
from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.errors import PrefdataError

FINISH = {"stop": "stop", "length": "length", "abort": None}


@lru_cache(maxsize=1)
def _engine(model: str, engine_args: tuple) -> Any:
    try:
        from vllm import LLM
    except ImportError:
        raise PrefdataError("the vllm backend needs vLLM on a GPU machine: pip install 'prefdata[vllm]'") from None
    return LLM(model=model, **dict(engine_args))


class VLLMBackend:
    name = "vllm"
    meter = None
    gives_logprobs = True  # judges ask for token log-probabilities (SamplingParams.logprobs) to read confidence

    def __init__(self, model: str, *, batch_size: int = 256, engine_args: dict | None = None, schema_retries: int = 2):
        self.model = model
        self.batch_size = batch_size  # vLLM schedules the whole batch itself; larger batches keep the GPU busy
        self.engine_args = tuple(sorted((engine_args or {}).items()))
        self.schema_retries = schema_retries

    def _params(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams

        p = request.params
        extra: dict[str, Any] = {}
        if request.json_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            extra["structured_outputs"] = StructuredOutputsParams(json=request.schema)
        return SamplingParams(temperature=p.temperature, top_p=p.top_p if p.temperature > 0 else 1.0,
                              max_tokens=p.max_tokens, seed=p.seed + request.sample, **extra)

    def _run(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        llm = _engine(self.model, self.engine_args)
        out: list[ChatResponse | None] = [None] * len(requests)
        for prefilled in (False, True):  # continue_final_message is per call
            index = [i for i, r in enumerate(requests) if bool(r.prefill) == prefilled]
            if not index:
                continue
            convos = [requests[i].as_messages() + ([{"role": "assistant", "content": requests[i].prefill}]
                                                   if prefilled else []) for i in index]
            try:
                results = llm.chat(convos, [self._params(requests[i]) for i in index], use_tqdm=False,
                                   add_generation_prompt=not prefilled, continue_final_message=prefilled)
            except Exception as exc:  # one failed call fails its rows, never the run
                for i in index:
                    out[i] = ChatResponse(None, error=f"backend_error: {type(exc).__name__}: {exc}"[:400])
                continue
            for i, result in zip(index, results):
                best = result.outputs[0]
                out[i] = ChatResponse(best.text, FINISH.get(best.finish_reason or "stop", best.finish_reason),
                                      len(result.prompt_token_ids or []), len(best.token_ids or []))
        return out  # type: ignore[return-value]

    def special_tokens(self) -> tuple[str, ...]:
        """The model's special and added tokens: vLLM renders the chat template and parses them as tokens too."""
        from prefdata.backends.transformers_backend import special_tokens_at

        return special_tokens_at(dict(self.engine_args).get("tokenizer", self.model), self.model)

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        answers = self._run(requests)
        return structured.check_batch(self._run, requests, answers, self.schema_retries)

