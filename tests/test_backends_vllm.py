"""The vLLM backend: offline `vllm.LLM`, batched. It needs vLLM and a GPU; elsewhere the generation test is
skipped (with the reason) and only the missing-dependency error is checked."""

import importlib.util
import json

import pytest

from prefdata.backends import ChatRequest, SamplingParams, make_backend
from prefdata.errors import PrefdataError
from prefdata.spec import BackendSpec

HAS_VLLM = importlib.util.find_spec("vllm") is not None
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
          "required": ["name", "score"]}


def _gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed: the generation test below runs instead")
def test_without_vllm_the_backend_says_what_to_install():
    backend = make_backend(BackendSpec(kind="vllm", model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    assert backend.name == "vllm" and backend.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(PrefdataError, match=r"prefdata\[vllm\]"):
        backend.generate([ChatRequest.of([{"role": "user", "content": "hi"}])])


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_VLLM and _gpu()), reason="vLLM is not installed (it needs a CUDA GPU; pip install "
                    "'prefdata[vllm]' on a GPU machine)" if not HAS_VLLM else "no CUDA GPU visible (on a CPU, "
                    "tests/test_vllm_real.py runs vLLM's CPU build: bash ci/vllm_check.sh)")
def test_vllm_generates_in_batches_with_structured_output(embedded_model):
    backend = make_backend(BackendSpec(kind="vllm", model=str(embedded_model), batch_size=64,
                                       engine_args={"gpu_memory_utilization": 0.3, "max_model_len": 2048}))
    params = SamplingParams(temperature=0.0, max_tokens=24)
    requests = [ChatRequest.of([{"role": "user", "content": q}], params=params)
                for q in ("What is the capital of France?", "Name a colour.")]
    requests.append(ChatRequest.of([{"role": "user", "content": "A name and a score."}], json_schema=SCHEMA,
                                   params=SamplingParams(temperature=0.0, max_tokens=64)))
    requests.append(ChatRequest.of([{"role": "user", "content": "Judge."}], params=params, prefill='{"winner": "'))
    answers = backend.generate(requests)
    assert all(a.error is None for a in answers), [a.error for a in answers]
    assert all(a.text and a.tokens_in > 0 and 0 < a.tokens_out <= 24 for a in answers[:2])
    value = json.loads(answers[2].text)
    assert isinstance(value["name"], str) and isinstance(value["score"], int)
