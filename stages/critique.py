"""Stage `critique`: a verdict (score, written critique, confidence, source) for every
sampled response; expert labels override the critic; the least confident go to review.

Faithfulness is measured wherever it can be: agreement with gold (when the suite has
gold) and Cohen's kappa with human labels (when there are some).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .arithmetic import extract_answer
from .critics import Critic, JudgeCritic, NoisyCritic, VerifierCritic, accepted, cohen_kappa
from .engine import Engine, EngineParams
from .errors import SuperalignError, one_line_errors
from .models import LearnerParams, load_base, load_checkpoint
from .params import DEFAULT_PARAMS, load_params
from .records import read_jsonl, write_json, write_jsonl
from .schema import LABEL, SAMPLE
from .tracking import campaign_name, stage_run


@dataclass(frozen=True)
class CritiqueParams:
    """Who judges the learner's responses."""

    kind: Literal["verifier", "noisy", "llm_judge"] = "verifier"
    flip_rate: float = 0.3  # noisy: share of verdicts flipped (a weak supervisor)
    seed: int = 0
    judge_model: str | None = None  # llm_judge: null = the base learner; or embedded:/dir/HF id
    max_new_tokens: int = 96  # llm_judge: room for the critique and the score line
    # llm_judge: "parse" = only a written "Score: N" counts (else a null verdict);
    # "forced" = read the score from the score tokens' probabilities after the critique
    score_mode: Literal["parse", "forced"] = "parse"
    review_budget: int = 8  # per round: lowest-confidence verdicts queued for an expert

    def __post_init__(self):
        if not 0 <= self.flip_rate <= 1:
            raise ValueError(f"flip_rate must be in [0, 1], got {self.flip_rate}")
        if self.review_budget < 0:
            raise ValueError(f"review_budget must be >= 0, got {self.review_budget}")


def make_critic(
    params: CritiqueParams, constitution: str, base_dir: str | Path, engine_params: EngineParams
) -> Critic:
    if params.kind == "verifier":
        return VerifierCritic()
    if params.kind == "noisy":
        return NoisyCritic(params.flip_rate, params.seed)
    if params.judge_model:
        model, tokenizer = load_base(LearnerParams(model=params.judge_model))
        name = params.judge_model
    else:
        model, tokenizer = load_checkpoint(base_dir)
        name = f"base:{Path(base_dir).name}"
    engine = Engine(model, tokenizer, engine_params)
    return JudgeCritic(engine, constitution, name, params.max_new_tokens, params.score_mode)


def load_critic(params: dict, constitution_path: str | Path, base_dir: str | Path) -> Critic:
    """The critic `params.yaml` asks for, with the suite's constitution read from disk."""
    constitution = Path(constitution_path).read_text(encoding="utf-8")
    return make_critic(params["critique"], constitution, base_dir, params["engine"])


def critique(
    samples: list[dict], critic: Critic, labels: dict[str, dict], review_budget: int
) -> tuple[list[dict], list[dict], dict]:
    """(verdict records, review queue, metrics) for the round's samples."""
    if not samples:
        raise SuperalignError("critique: no samples to judge")
    verdicts = []
    for sample, v in zip(samples, critic.judge(samples), strict=True):
        record = _sample_fields(sample) | v
        label = labels.get(sample["id"])
        if label:
            record |= {
                "score": float(label["score"]),
                "critique": label.get("critique") or record["critique"],
                "confidence": 1.0,
                "source": "human",
                "labeler": label.get("labeler"),
                "critic_verdict": v,
            }
        verdicts.append(record)
    queue = review_queue(verdicts, review_budget)
    return verdicts, queue, critique_metrics(verdicts)


def _sample_fields(sample: dict) -> dict:
    keep = (
        "id",
        "query_id",
        "suite",
        "prompt",
        "response",
        "gold",
        "bucket",
        "sample_index",
        "policy",
    )
    return {k: sample.get(k) for k in keep}


def review_queue(verdicts: list[dict], budget: int) -> list[dict]:
    """The least confident critic verdicts (null verdicts first) an expert has not labelled."""
    open_items = [v for v in verdicts if v["source"] != "human"]
    open_items.sort(key=lambda v: (v["confidence"] is not None, v["confidence"] or 0.0, v["id"]))
    return open_items[:budget]


def critique_metrics(verdicts: list[dict]) -> dict:
    critic_view = [v.get("critic_verdict", v) for v in verdicts]
    given = [v for v in critic_view if v["score"] is not None]
    metrics = {
        "items": len(verdicts),
        "null_verdicts": len(verdicts) - len(given),
        "null_rate": 1 - len(given) / len(verdicts),
        "accept_rate": _mean([accepted(v) for v in verdicts if v["score"] is not None]),
        "mean_score": _mean([v["score"] for v in verdicts if v["score"] is not None]),
        "human_labels": sum(v["source"] == "human" for v in verdicts),
    }
    gold_pairs = [
        (accepted(c), extract_answer(v["response"]) == v["gold"])
        for v, c in zip(verdicts, critic_view)
        if v.get("gold") is not None and c["score"] is not None
    ]
    if gold_pairs:  # critic faithfulness against gold
        metrics["agreement_with_gold"] = _mean([a == g for a, g in gold_pairs])
        metrics["kappa_with_gold"] = cohen_kappa(*map(list, zip(*gold_pairs)))
    human = [
        (accepted(v["critic_verdict"]), accepted(v))
        for v in verdicts
        if v["source"] == "human" and v["critic_verdict"]["score"] is not None
    ]
    if human:
        metrics["agreement_with_human"] = _mean([a == h for a, h in human])
        metrics["kappa_with_human"] = cohen_kappa(*map(list, zip(*human)))
    return metrics


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def load_labels(path: str | Path) -> dict[str, dict]:
    """Expert verdicts keyed by sample id (a later line for the same id wins)."""
    if not Path(path).exists():
        return {}
    labels = {}
    for label in read_jsonl(path, required=LABEL):
        if not isinstance(label["score"], (int, float)) or not 0 <= label["score"] <= 1:
            raise SuperalignError(f"{path}: label {label['id']} needs a score in [0, 1]")
        labels[label["id"]] = label
    return labels


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--labels", required=True, help="git-tracked expert labels (JSON Lines)")
    parser.add_argument("--constitution", required=True, help="rubric the llm_judge applies")
    parser.add_argument("--base", required=True, help="base checkpoint (default judge model)")
    parser.add_argument("--out", required=True, help="verdicts JSON Lines")
    parser.add_argument("--queue", required=True, help="review queue JSON Lines")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--params", default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    samples = read_jsonl(args.samples, required=SAMPLE)
    labels = load_labels(args.labels)
    with stage_run("critique", args.round, campaign_name(params["tracking"].campaign)) as run:
        run.log_params({"critique": params["critique"]})
        critic = load_critic(params, args.constitution, args.base)
        verdicts, queue, metrics = critique(
            samples, critic, labels, params["critique"].review_budget
        )
        write_jsonl(args.out, verdicts)
        write_jsonl(args.queue, queue)
        write_json(args.metrics, metrics)
        run.log_metrics(metrics, on_campaign=True)
    print(
        f"critique@{args.round}: {metrics['items']} verdicts by {critic.name}, "
        f"{metrics['null_verdicts']} null, accept rate {metrics['accept_rate'] or 0:.2f}"
    )


if __name__ == "__main__":
    main()
