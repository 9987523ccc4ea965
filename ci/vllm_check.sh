#!/usr/bin/env bash
# vLLM for real on this machine's CPU (no GPU needed): makes .venv-vllm if needed (ci/vllm_env.sh), then
# runs tests/test_vllm_real.py there: prefdata's VLLMBackend (samples, prefill, structured verdicts,
# logprobs, a too-long prompt), VLLMRewardBackend against transformers, and a whole `prefdata build` on vLLM.
# Not part of CI (.ci/run): three engine starts take minutes on a CPU; 7.5 to 10 min measured on 2 cores.
# Extra arguments go to pytest, e.g. `bash ci/vllm_check.sh -k reward`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/vllm_env.sh
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}  # GiB of KV cache; the CPU default is larger
# -o addopts=: the project's pytest options ask for xdist workers; vLLM's engine wants the cores to itself.
exec .venv-vllm/bin/python -m pytest -o addopts= -p no:cacheprovider -q -s -ra --timeout 1500 \
  tests/test_vllm_real.py "$@"
