"""Stage `critique`: a verdict (score, written critique, confidence, source) for every
sampled response; expert labels override the critic; the least confident go to review.

Faithfulness is measured wherever it can be: agreement and Cohen's kappa with the suite's
ground truth (on the items that have gold or a label) and with human labels (when there
are some).
"""

from __future__ import annotations

from pathlib import Path

from .critics import Critic, accepted, cohen_kappa, load_critic
from .errors import SuperalignError
from .records import read_jsonl, write_json, write_jsonl
from .schema import LABEL, SAMPLE
from .stage import Stage, option, stage_main
from .suites import load_suite
from .suites.base import Suite


def critique(
    samples: list[dict],
    critic: Critic,
    labels: dict[str, dict],
    review_budget: int,
    suite: Suite,
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
    return verdicts, queue, critique_metrics(verdicts, suite)


def _sample_fields(sample: dict) -> dict:
    keep = (
        "id",
        "query_id",
        "suite",
        "prompt",
        "response",
        "gold",
        "label",
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


def critique_metrics(verdicts: list[dict], suite: Suite) -> dict:
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
    truths = [suite.grade(v, v["response"]) for v in verdicts]
    gold_pairs = [
        (accepted(c), truth.correct)
        for truth, c in zip(truths, critic_view)
        if truth is not None and c["score"] is not None
    ]
    if gold_pairs:  # critic faithfulness against the suite's ground truth
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


@stage_main(
    "critique",
    __doc__,
    option("--samples", required=True),
    option("--labels", required=True, help="git-tracked expert labels (JSON Lines)"),
    option("--rubric", required=True, help="the suite's rubric, applied by the llm_judge"),
    option("--base", required=True, help="base checkpoint (default judge model)"),
    option("--out", required=True, help="verdicts JSON Lines"),
    option("--queue", required=True, help="review queue JSON Lines"),
    option("--metrics", required=True),
    logs=("critique",),
)
def main(stage: Stage) -> None:
    args, p = stage.args, stage.params["critique"]
    samples = read_jsonl(args.samples, required=SAMPLE)
    labels = load_labels(args.labels)
    critic = load_critic(stage.params, args.rubric, args.base)
    suite = load_suite(stage.params["suite"])
    verdicts, queue, metrics = critique(samples, critic, labels, p.review_budget, suite)
    write_jsonl(args.out, verdicts)
    write_jsonl(args.queue, queue)
    write_json(args.metrics, metrics)
    stage.run.log_metrics(metrics, on_campaign=True)
    print(
        f"critique@{stage.round}: {metrics['items']} verdicts by {critic.name}, "
        f"{metrics['null_verdicts']} null, accept rate {metrics['accept_rate'] or 0:.2f}"
    )


if __name__ == "__main__":
    main()
