#!/usr/bin/env bash
# The small-model recipe on one GPU in one device call (scripts/gpu_train.py says what each phase does):
# pretrain a ~0.86B Llama from scratch on the machine's Python source, SFT it on PyX + PyX-R, time our step
# against a plain transformers step, save and reload the Hugging Face checkpoint; a table is printed last.
#
# The GPU machine has torch and transformers but not pydantic: carry its wheels in .whl/ (git-ignored):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .whl pydantic==2.13.4 pydantic_core==2.46.4 annotated-types \
#     typing-inspection typing_extensions==4.16.0
# Device call: run(carry=[".whl"], command="bash scripts/gpu_train.sh --pyx data/pyx.jsonl --pyxr data/pyxr.jsonl")
# Phase budgets: --pretrain-seconds (150) and --sft-seconds (120); with compile warm-up, model build and
# the plain-step baseline the whole script takes about 7 minutes. Small results (metrics, plots, results.json,
# table.txt, the log) go to $OUT; checkpoints to --work (/tmp/semcoder-gpu-train).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/runs/gpu_train}
mkdir -p "$OUT"
if ! python3 -c "import pydantic" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
# NVLink multicast stays off on these machines (KINDS.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 - <<'PY'
import importlib
import torch, transformers
print("torch", torch.__version__, "| transformers", transformers.__version__,
      "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
for name in ("pydantic", "yaml", "matplotlib", "datasets"):
    try:
        importlib.import_module(name)
    except ImportError:
        print(f"{name}: missing" + (" (no loss.png; plot metrics.jsonl with `semcoder train plot`)" if name == "matplotlib" else ""))
PY
python3 scripts/gpu_train.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_train.log"
