#!/usr/bin/env bash
# The model layer's GPU check, in one device call: build a ~100M random-init Llama with the project's code,
# serve it with `semcoder model serve`, run the openai and in-process vllm backends on 256 prompts x n=4
# and print their tokens/s next to vLLM's own (scripts/gpu_check.py says how).
#
# Needs vLLM importable: stage it as ../shared/gpu/README.md says, then
#   export PYTHONPATH=/tmp/vllm-site:$PYTHONPATH && bash scripts/gpu_check.sh [gpu_check.py options]
# Installs nothing; the project runs from this checkout through PYTHONPATH. Logs and the table go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/runs/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# The in-process engine must not be forked from a process whose thread pools already ran.
export VLLM_WORKER_MULTIPROC_METHOD=spawn TOKENIZERS_PARALLELISM=false
python3 -c "import vllm, click, pydantic_settings, openai, agent.models; print('vllm', vllm.__version__, '| openai', openai.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 scripts/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
