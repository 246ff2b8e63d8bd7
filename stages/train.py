"""Stage `train`: LoRA DPO (TRL + PEFT) on the round's preference pairs.

The policy being trained is the previous round's policy (base + earlier adapters merged);
only the new LoRA adapter is stored (models/rK), and `load_policy("rK")` rebuilds the
policy from the base and the adapter chain. The reference policy is the previous round's
policy (the adapter switched off) or, optionally, the base model.

Replay: each round also writes the pairs it was trained on (`data/rounds/rK/trained_on.jsonl`,
each tagged with the round that built it; `prepare` writes r0's, empty), and round K
trains on its own pairs plus those of the last `replay_rounds` rounds, read from round
K-1's file, a dependency `dvc dag` shows. Later rounds have fewer, harder pairs;
replaying the round before keeps what it taught. `train.replay_share` replays a share of
them, and `train.max_pairs` caps a round's pairs (which go first: `TrainParams`).

With `train.step_scales`, the adapter stored is the trained one scaled by the step the
validation set chose (step.py); the pairs it learned from are written all the same.

Defaults resist collapse: `sigmoid` preference loss plus an `sft` term on the chosen
answers, a conservative learning rate, no gradient checkpointing on small models.
"""

from __future__ import annotations

import gc
import math
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from .engine import resolve_dtype
from .errors import SuperalignError
from .models import load_checkpoint
from .params import TrainParams, recent_rounds
from .policy import load_policy
from .records import atomic_path, read_jsonl, write_jsonl
from .runtime import keep_freed_memory, score_completions_only
from .schema import PAIR, QUERY
from .stage import Stage, option, stage_main
from .step import (
    check_validation,
    read_record,
    scale_adapter,
    search_step,
    validation_answering,
    validation_fingerprint,
    write_record,
)
from .suites import load_suite


def replayed_pairs(prev_trained_on: Path, replay: list[str]) -> list[dict]:
    """The pairs the previous round was trained on that came from the `replay` rounds."""
    if not replay:
        return []
    pairs = read_jsonl(prev_trained_on, required=PAIR + ("round",))
    return [p for p in pairs if p["round"] in replay]


def cap_pairs(
    pairs: Sequence[dict],
    replay: Sequence[dict],
    max_pairs: int | None,
    seed: int,
    replay_share: float = 1.0,
) -> tuple[list[dict], list[dict]]:
    """`replay_share` of `replay` (rounded), then at most `max_pairs` of `pairs` + that:
    replayed pairs are dropped first (the round before already learned from them), then
    this round's own; those kept are drawn under `seed` and keep their order."""
    pairs, replay = list(pairs), list(replay)
    rng = random.Random(seed)

    def draw(items: list[dict], k: int) -> list[dict]:
        return [items[i] for i in sorted(rng.sample(range(len(items)), k))]

    if replay_share < 1:
        replay = draw(replay, round(len(replay) * replay_share))
    if max_pairs is None or len(pairs) + len(replay) <= max_pairs:
        return pairs, replay
    return draw(pairs, min(len(pairs), max_pairs)), draw(replay, max(0, max_pairs - len(pairs)))


def train(
    pairs: list[dict],
    model,
    tokenizer,
    params: TrainParams,
    out_dir,
    ref_model=None,
    round_name: str = "",
    replay: Sequence[dict] = (),
    trained_on_path: str | Path | None = None,
) -> dict:
    """Train a fresh LoRA adapter on `pairs` + `replay` (at most `params.max_pairs` of
    them); save the adapter to `out_dir` (the adapter only, never a model copy) and the
    pairs it learned from to `trained_on_path` (this round's tagged `round_name`, replayed
    ones keep their tag).
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    keep_freed_memory()  # faster steps on CPU: see runtime.py and bench/train_step.py
    score_completions_only()  # likewise: no vocabulary projection of prompt positions
    if not pairs:
        raise SuperalignError(
            "train: the preference set is empty, nothing to learn from "
            "(see build_prefs metrics: every query was dropped)"
        )
    offered = len(pairs) + len(replay)
    pairs, replay = cap_pairs(pairs, replay, params.max_pairs, params.seed, params.replay_share)
    trained_on = [p | {"round": round_name} for p in pairs] + replay
    dataset = Dataset.from_list(
        [
            {"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]}
            for p in trained_on
        ]
    )
    targets = params.target_modules
    lora = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=targets[0] if targets == ("all-linear",) else list(targets),
        task_type="CAUSAL_LM",
    )
    on_gpu = torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    attention = params.attention if params.attention != "auto" else "sdpa" if on_gpu else "eager"
    models = [m for m in (model, ref_model) if m is not None]
    # given back as found afterwards: a caller that goes on to generate with the model
    # (bench/one_round.py) gets the numerics the evaluate stage has on a fresh load
    found = [m.config._attn_implementation for m in models]
    for m in models:
        m.set_attn_implementation(attention)
    use_bf16 = resolve_dtype(params.precision, device) == torch.bfloat16
    with tempfile.TemporaryDirectory() as scratch:
        config = DPOConfig(
            output_dir=scratch,
            per_device_train_batch_size=params.batch_size,
            gradient_accumulation_steps=params.grad_accum,
            learning_rate=params.learning_rate,
            num_train_epochs=params.epochs,
            beta=params.beta,
            loss_type=list(params.loss_type),
            max_length=params.max_length,
            seed=params.seed,
            use_cpu=not on_gpu,
            bf16=use_bf16,
            activation_checkpointing=False,  # slows small models a lot, saves little memory
            # The reference is fixed for the round: with more than one pass over the pairs,
            # computing its log-probs once up front saves a reference forward per step of
            # every later epoch (same values: the same bf16 autocast forward).
            precompute_ref_log_probs=params.epochs > 1,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=ref_model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
        )
        try:
            result = trainer.train()
        finally:
            for m, implementation in zip(models, found):
                m.set_attn_implementation(implementation)
        history = trainer.state.log_history
    for adapter in trainer.model.peft_config.values():
        if isinstance(adapter.target_modules, set):
            # PEFT writes this set in string-hash order, which changes from one process
            # to the next: sorted, the same training writes the same bytes and DVC sees
            # an unchanged adapter instead of rerunning every stage downstream of it
            adapter.target_modules = sorted(adapter.target_modules)
    with atomic_path(out_dir) as tmp:
        trainer.model.save_pretrained(tmp)
    if trained_on_path is not None:
        write_jsonl(trained_on_path, trained_on)
    return train_metrics(history, result.metrics, len(trained_on)) | {
        "replayed_pairs": len(replay),
        "dropped_by_cap": offered - len(trained_on),
        "attention": attention,
    }


def train_metrics(history: list[dict], final: dict, pairs: int) -> dict:
    steps = [h for h in history if "loss" in h]

    def mean(key):
        values = [h[key] for h in steps if key in h and math.isfinite(h[key])]
        return sum(values) / len(values) if values else None

    return {
        "pairs": pairs,
        "steps": len(steps),
        "loss_first": steps[0]["loss"] if steps else None,
        "loss_last": steps[-1]["loss"] if steps else None,
        "train_loss": final.get("train_loss"),
        "reward_accuracy": mean("rewards/accuracies"),
        "reward_margin": mean("rewards/margins"),
        "reward_margin_last": steps[-1].get("rewards/margins") if steps else None,
        "seconds": final.get("train_runtime"),
    }


@stage_main(
    "train",
    __doc__,
    option("--policy", required=True, help="the round trained from (rK-1)"),
    option("--models", default="models"),
    option("--pairs", required=True),
    option("--out", required=True, help="adapter directory to write (models/rK)"),
    option("--replay-from", required=True, help="what round K-1 was trained on"),
    option("--trained-on", required=True, help="where to write what this round trains on"),
    option("--base", required=True, help="base checkpoint (the reference when base)"),
    option("--validation", required=True, help="the suite's validation set (step search)"),
    option("--metrics", required=True),
    logs=("train",),
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    p: TrainParams = params["train"]
    if p.searches_step:  # checked before training, not after it
        suite = load_suite(params["suite"])
        validation = read_jsonl(args.validation, required=QUERY)
        check_validation(validation, suite)
    pairs = read_jsonl(args.pairs, required=PAIR)
    model, tokenizer = load_policy(args.policy, args.models, params["rounds"])
    ref = load_checkpoint(args.base)[0] if p.reference == "base" else None
    recent = recent_rounds(params["rounds"], args.policy, p.replay_rounds)
    replay = replayed_pairs(Path(args.replay_from), recent)
    with tempfile.TemporaryDirectory() as scratch:
        trained = Path(scratch) / "trained" if p.searches_step else args.out
        metrics = train(
            pairs,
            model,
            tokenizer,
            p,
            trained,
            ref,
            round_name=stage.round,
            replay=replay,
            trained_on_path=args.trained_on,
        )
        if p.searches_step:
            del model, ref  # the candidates load their own: one model in memory at a time
            gc.collect()
            answering = validation_answering(params["evaluate"], p.step_max_new_tokens)
            fingerprint = validation_fingerprint(validation, params["engine"], answering)
            scale, report = search_step(
                trained,
                p.step_scales,
                p.step_tolerance,
                validation,
                suite,
                lambda: load_policy(args.policy, args.models, params["rounds"]),
                None if args.policy == "r0" else lambda: load_policy("r0", args.models),
                params["engine"],
                answering,
                Path(scratch),
                # round 1's previous policy is the base, which no search stored rates for
                known=read_record(Path(args.models) / args.policy, fingerprint),
            )
            with atomic_path(args.out) as tmp:
                scale_adapter(trained, tmp, scale)
                write_record(tmp, fingerprint, report)
            metrics |= report
    stage.write_metrics(args.metrics, metrics)
    print(
        f"train@{stage.round}: {metrics['pairs']} pairs ({metrics['replayed_pairs']} replayed, "
        f"{metrics['dropped_by_cap']} dropped by train.replay_share / max_pairs), "
        f"{metrics['steps']} steps, "
        f"loss {metrics['loss_first']:.3f} -> {metrics['loss_last']:.3f}, "
        f"reward accuracy {metrics['reward_accuracy'] or 0:.2f}"
        + (f"; step kept: {metrics['step_scale']:g}" if p.searches_step else "")
    )


if __name__ == "__main__":
    main()
