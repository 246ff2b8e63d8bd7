"""Sampling throughput: the shared engine vs naive one-prompt-at-a-time `generate`.

Same model, same prompts (the first N held-out problems), same greedy settings and token
budget. The naive baseline is what a hand-written loop does: fp32, no batching. The
engine batches, left-pads, buckets by length and uses bf16 where the CPU has it.

    python bench/engine_throughput.py            # models/r0 if present, else the embedded model
    python bench/engine_throughput.py --prompts 32 --batch-size 32 --model path/to/ckpt
    python bench/engine_throughput.py --model r1 [--frozen]   # a round's merged policy
                                                              # (--frozen: as PEFT leaves it)
    python bench/engine_throughput.py --model DIR --random-weights   # DIR holds only a
        # config and tokenizer: random weights of that shape, where the weights cannot travel

Both runs use the same device: CUDA when torch sees a GPU, else the CPU. On a GPU the
naive loop is slow per prompt, so `--naive-prompts` times it on fewer prompts (a rate).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.machine import machine  # noqa: E402
from stages.engine import Engine, EngineParams, SamplingParams, default_device  # noqa: E402
from stages.models import LearnerParams, load_base, load_checkpoint  # noqa: E402
from stages.policy import load_policy  # noqa: E402
from stages.schema import conversation  # noqa: E402
from stages.suites.arithmetic import heldout_problems  # noqa: E402


def load(model: str | None, random_weights: bool = False):
    if random_weights:
        # Same shape, same compute per token as the real checkpoint; the text is noise, so
        # every sequence runs to the token budget.
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model)), (
            AutoTokenizer.from_pretrained(model)
        )
    if model and re.fullmatch(r"r\d+", model) and not Path(model).exists():
        return load_policy(model)
    if model:
        return load_checkpoint(model) if Path(model).is_dir() else load_base(LearnerParams(model))
    if Path("models/r0/config.json").is_file():
        return load_checkpoint("models/r0")
    return load_base(LearnerParams())


@torch.inference_mode()
def naive(model, tokenizer, prompts: list[str], max_new_tokens: int) -> tuple[int, float]:
    device = default_device()
    model = model.to(device=device, dtype=torch.float32)
    tokens, started = 0, time.perf_counter()
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            conversation(prompt), add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
        out = model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.eos_token_id,
        )
        tokens += out.shape[1] - ids["input_ids"].shape[1]
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint dir or learner.model value")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--naive-prompts", type=int, help="prompts for the naive loop")
    parser.add_argument(
        "--repeat", type=int, default=1, help="engine runs over the prompts; the last is reported"
    )
    parser.add_argument(
        "--random-weights", action="store_true", help="--model is a config dir: random weights"
    )
    parser.add_argument(
        "--frozen", action="store_true", help="freeze the weights first (requires_grad=False)"
    )
    args = parser.parse_args()

    prompts = [p["prompt"] for p in heldout_problems()[:: max(1, 240 // args.prompts)]][
        : args.prompts
    ]
    if args.random_weights and not args.model:
        parser.error("--random-weights needs --model DIR (a config and tokenizer)")
    model, tokenizer = load(args.model, args.random_weights)
    model.requires_grad_(not args.frozen)
    naive_prompts = prompts[: args.naive_prompts or len(prompts)]
    naive_tokens, naive_s = naive(model, tokenizer, naive_prompts, args.max_new_tokens)

    engine = Engine(model, tokenizer, EngineParams(batch_size=args.batch_size, dtype=args.dtype))
    engine.generate(
        [conversation(p) for p in prompts[:4]], SamplingParams(max_new_tokens=4)
    )  # warm-up
    # Each repeat is timed on its own: a first run slower than the next ones is one-time
    # set-up at this batch's shapes (GPU kernels chosen, memory pooled), not throughput.
    runs = [
        engine.generate(
            [conversation(p) for p in prompts], SamplingParams(max_new_tokens=args.max_new_tokens)
        )
        for _ in range(args.repeat)
    ]
    out = runs[-1]

    facts = machine()  # the GPU's name, or the CPU's: what the figures were measured on
    result = {
        "prompts": len(prompts),
        "device": facts.get("gpu", facts["cpu"]),
        "threads": torch.get_num_threads(),
        "random_weights": args.random_weights,
        "naive_prompts": len(naive_prompts),
        "naive_fp32_tokens_per_s": round(naive_tokens / naive_s, 1),
        "frozen": args.frozen,
        "engine_dtype": str(engine.dtype).removeprefix("torch."),
        "engine_batch_size": args.batch_size,
        "engine_tokens_per_s": round(out.tokens_per_s, 1),
        "engine_tokens_per_s_each_repeat": [round(run.tokens_per_s, 1) for run in runs],
        "speedup": round(out.tokens_per_s / (naive_tokens / naive_s), 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
