#!/usr/bin/env bash
# The chat dialect's GPU check, in one device call on ONE H200 (about 4-6 minutes, most of it vLLM's start):
# build a ~100M random-init Llama whose tokenizer has a ChatML chat template, serve it with `semcoder model serve`,
# check the endpoint (routes, window, refusals), time the same prompts through /v1/chat/completions (messages) and
# /v1/completions (the template's rendering) with ignore_eos, run `semcoder repair --dialect chat` on
# examples/inventory and a short `semcoder eval --dialect chat` (humaneval with a refine round, cruxeval-o), and
# print a table with the chat/completions ratio last (scripts/gpu_chat.py says how).
#
# Needs vLLM importable (stage it as ../shared/gpu/README.md says) and the project's own dependencies (langgraph,
# ...: carry ".whl/gpu", scripts/gpu_env.sh says how it is built):
#   bash .gpu/vl4/stage.sh && export PYTHONPATH=/tmp/vllm-site:$PYTHONPATH && bash scripts/gpu_chat.sh [options]
# Installs nothing outside /tmp; logs and the table go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/runs/gpu_chat}
mkdir -p "$OUT"
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false VLLM_WORKER_MULTIPROC_METHOD=spawn
python3 -c "import vllm, langgraph, agent.models; print('vllm', vllm.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 scripts/gpu_chat.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_chat.log"
