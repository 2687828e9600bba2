"""A CPU stand-in for `semcoder model serve`: the transformers backend behind the test suite's OpenAI-compatible
app (tests/models/openai_test_server.py), on a fixed port. For smoke runs of GPU scripts on a machine without
vLLM (scripts/gpu_e2e.py --server cpu); not for users.

    python3 scripts/cpu_openai_server.py CHECKPOINT --name NAME --port 8100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "models")]

import uvicorn  # noqa: E402
from openai_test_server import ServerState, build_app  # noqa: E402

from agent.models import ModelConfig, load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--name", required=True, help="the model name clients ask for")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-model-len", type=int, default=None, help="report and enforce a context window")
    args = parser.parse_args()
    generator = load_model(ModelConfig(backend="transformers", model=args.checkpoint, device="cpu"))
    # The checkpoint's own tokenizer renders chats (/v1/chat/completions), as vLLM would.
    app = build_app(generator, args.name, ServerState(), tokenizer=generator.tokenizer,  # type: ignore[attr-defined]
                    max_model_len=args.max_model_len)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
