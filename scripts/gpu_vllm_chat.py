"""GPU check of the in-process vLLM backend's chat dialect (issue #16): VLLMGenerator renders a chat by the
tokenizer's template and sends it as token ids; the ids must be vLLM's own rendering of the same chat (`LLM.chat`'s
template path: `apply_chat_template(..., add_generation_prompt=True, tokenize=True)`), and chats and raw prompts
must mix in one batch. One call on one GPU (about 2-3 minutes, most of it the engine's start):

    bash .gpu/vl4/stage.sh && export PYTHONPATH=/tmp/vllm-site:$PYTHONPATH && source scripts/gpu_env.sh \
        && python3 scripts/gpu_vllm_chat.py

Prints one PASS/FAIL line per check and exits 1 on a FAIL.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import chat_prompts  # noqa: E402
from agent.models import GenerationRequest, SamplingParams, VLLMGenerator, generate_sync  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="semcoder-vllm-chat-") as scratch:
        model = Path(scratch) / "model"
        subprocess.run([sys.executable, "-m", "training.tiny_model", str(model), "--preset", "gpu"], check=True,
                       cwd=ROOT)
        generator = VLLMGenerator(model, gpu_memory_utilization=0.5, max_model_len=4096, enforce_eager=True)
        chats = [chat_prompts.nl2code_messages("Return the sum of a list of integers."),
                 chat_prompts.cruxeval_output_messages("def f(x):\n    return x * 2", "f(3)")]
        params = SamplingParams(n=2, max_tokens=32, temperature=0.8, seed=1)
        requests = [GenerationRequest(messages=chat, params=params) for chat in chats]
        requests.append(GenerationRequest(prompt="def add(a, b):\n", params=params))
        tokenizer = generator.llm.get_tokenizer()
        checks = []
        for request in requests[:len(chats)]:
            ours = generator.engine_prompt(request)["prompt_token_ids"]
            theirs = tokenizer.apply_chat_template(request.chat(), add_generation_prompt=True, tokenize=True)
            theirs = list(theirs["input_ids"] if hasattr(theirs, "keys") else theirs)  # transformers 5: a BatchEncoding
            checks.append((f"chat rendered as vLLM renders it ({len(ours)} tokens, vLLM's {len(theirs)})",
                           ours == theirs))
        results = generate_sync(generator, requests)
        checks.append(("chats and a raw prompt in one batch: n completions each",
                       [len(r.completions) for r in results] == [2, 2, 2]))
        checks.append(("usage counts the rendered chat's tokens",
                       results[0].usage.prompt_tokens == len(generator.engine_prompt(requests[0])["prompt_token_ids"])))
    for name, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
