"""Can the 135M judge read harm and refusal from its hidden states better than from its
token likelihoods, given only the label budget?

    python bench/representation_probe.py rules-strict-fp32 [--labels 16 48] [--draws 30]

Reads a campaign's safety verdicts (request, response, the suite's label) from DVC's
cache, runs the embedded base model once over them, and compares, per round and per
question (is the request harmful; does the response decline):
- the likelihood probe the yes/no judge uses (ranking AUC; accuracy of the best threshold
  fitted on N labelled items),
- a logistic regression on the judge's mean-pooled hidden states at a few layers, fitted
  on N labelled items drawn at random (median over draws), scored on the rest.
Truth: the suite's label for harm, the rules' detectors for declining. No training of the
learner; one forward pass per text on the base model.

    python bench/representation_probe.py rules-strict-fp32 --judge [--labels 16 48]

instead runs the yes/no judge itself over those verdicts, each way of reading its probes
(critique.harm_probe / refusal_probe), calibrated as the critique stage does on N verdicts
labelled at random with the rules' verdict (whole verdicts, not the two questions), and
prints its agreement and kappa with the rules on every verdict of the round (median over
draws).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import cached_outputs, experiment_lock  # noqa: E402
from stages.engine import Engine, EngineParams  # noqa: E402
from stages.models import load_base  # noqa: E402
from stages.params import LearnerParams  # noqa: E402
from stages.schema import conversation  # noqa: E402
from stages.suites.refusal import declines, redirects  # noqa: E402
from stages.verdicts import ACCEPT, cohen_kappa  # noqa: E402
from stages.verdicts import ranking_auc as auc  # noqa: E402
from stages.yes_no_judge import YesNoJudge  # noqa: E402


@torch.inference_mode()
def pooled_states(engine: Engine, items: list[tuple[str, str]], layers: list[int]) -> torch.Tensor:
    """Mean hidden state over the second text's tokens (the whole first text when the
    second is empty), at each of `layers`: (items, layers, hidden)."""
    tok, out = engine.tokenizer, []
    for start in range(0, len(items), 32):
        batch = items[start : start + 32]
        ids = [
            (
                tok(a, add_special_tokens=False)["input_ids"],
                tok(b, add_special_tokens=False)["input_ids"],
            )
            for a, b in batch
        ]
        rows = [a + b for a, b in ids]
        padded = tok.pad({"input_ids": rows}, return_tensors="pt")
        positions = (padded["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        hidden = engine.model(
            **padded, position_ids=positions, output_hidden_states=True
        ).hidden_states
        width = padded["input_ids"].shape[1]
        for row, (a, b) in enumerate(ids):
            span = len(b) or len(a)  # left padding: the pooled span ends the row
            out.append(
                torch.stack([hidden[k][row, width - span :].float().mean(0) for k in layers])
            )
    return torch.stack(out)


def logistic_accuracy(x, y, n, draws):
    """Median accuracy and AUC on the rest, of a logistic regression fitted on n random
    items (a draw whose n items hold one class only is skipped)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    accs, aucs = [], []
    for seed in range(draws):
        train = random.Random(seed).sample(range(len(y)), n)
        if len({y[i] for i in train}) < 2:
            continue
        test = [i for i in range(len(y)) if i not in set(train)]
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=0.1, max_iter=2000).fit(
            scaler.transform(x[train]), [y[i] for i in train]
        )
        p = model.predict_proba(scaler.transform(x[test]))[:, 1]
        accs.append(sum((pi >= 0.5) == y[i] for pi, i in zip(p, test)) / len(test))
        aucs.append(auc(list(p), [y[i] for i in test]))
    return statistics.median(accs), statistics.median(aucs)


def threshold_accuracy(scores, y, n, draws):
    """Median accuracy on the rest of the best threshold (either way up) on n random items."""
    accs = []
    for seed in range(draws):
        train = random.Random(seed).sample(range(len(y)), n)
        best = max(
            ((t, up) for t in {scores[i] for i in train} for up in (True, False)),
            key=lambda c: sum(((scores[i] >= c[0]) == c[1]) == y[i] for i in train),
        )
        test = [i for i in range(len(y)) if i not in set(train)]
        accs.append(sum(((scores[i] >= best[0]) == best[1]) == y[i] for i in test) / len(test))
    return statistics.median(accs)


JUDGES = {"likelihood": ("likelihood", "likelihood"), "hidden": ("hidden", "hidden")}
JUDGES["hidden refusal only"] = ("likelihood", "hidden")


def judge_agreement(engine, verdicts, labels: list[int], draws: int) -> None:
    """Per way of reading: the judge calibrated on n random whole-verdict labels, its
    agreement / kappa with the rules over the round (medians of `draws` draws)."""
    truth = [v["score"] >= ACCEPT for v in verdicts]
    items = [
        {"id": str(i), "prompt": v["prompt"], "response": v["response"]}
        for i, v in enumerate(verdicts)
    ]
    for name, (harm, refusal) in JUDGES.items():
        judge = YesNoJudge(engine, "judge", harm_probe=harm, refusal_probe=refusal)
        judged = [i | v for i, v in zip(items, judge.judge(items))]
        for n in labels:
            agree, kappa = [], []
            for seed in range(draws):
                picked = random.Random(seed).sample(range(len(items)), n)
                judge.calibrate(judged, {str(i): truth[i] for i in picked}, 8)
                says = [judge.rescore(v)["score"] >= ACCEPT for v in judged]
                agree.append(sum(s == t for s, t in zip(says, truth)) / len(truth))
                kappa.append(cohen_kappa(says, truth) or 0.0)
            print(
                f"  {name:<20} {n:>3} labels: agreement {statistics.median(agree):.3f} "
                f"(p10 {sorted(agree)[len(agree) // 10]:.3f}), kappa {statistics.median(kappa):.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("campaign")
    ap.add_argument("--labels", type=int, nargs="+", default=[16, 48])
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--layers", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--judge", action="store_true", help="the judge's agreement with the rules")
    args = ap.parse_args()
    model, tokenizer = load_base(LearnerParams())
    engine = Engine(model, tokenizer, EngineParams(batch_size=32, dtype="float32"))
    judge = YesNoJudge(engine, "base")
    lock = experiment_lock(args.campaign, ROOT)
    for round_name, path in sorted(
        cached_outputs(lock, "critique", "verdicts.jsonl", ROOT).items()
    ):
        verdicts = [json.loads(line) for line in path.read_text().splitlines()]
        verdicts = [v for v in verdicts if v.get("label") in ("harmful", "benign")]
        if args.judge:
            print(f"{args.campaign} {round_name}: {len(verdicts)} safety verdicts")
            judge_agreement(engine, verdicts, args.labels, args.draws)
            continue
        requests = list(dict.fromkeys(v["prompt"] for v in verdicts))
        harmful = {v["prompt"]: v["label"] == "harmful" for v in verdicts}
        rendered = {p: engine.render(conversation(p)) for p in requests}
        y_harm = [harmful[p] for p in requests]
        y_ref = [declines(v["response"]) or redirects(v["response"]) for v in verdicts]
        lk_harm = judge._p_harmful([{"prompt": p} for p in requests])
        lk_ref = judge._p_refuses(verdicts)
        x_harm = pooled_states(engine, [(rendered[p], "") for p in requests], args.layers)
        x_ref = pooled_states(
            engine, [(rendered[v["prompt"]], v["response"]) for v in verdicts], args.layers
        )
        print(
            f"{args.campaign} {round_name}: {len(requests)} requests ({sum(y_harm)} harmful), "
            f"{len(verdicts)} responses ({sum(y_ref)} decline)"
        )
        for what, y, lk, x in (
            ("harm", y_harm, lk_harm, x_harm),
            ("declines", y_ref, lk_ref, x_ref),
        ):
            print(f"  {what}: likelihood AUC {auc(lk, y):.3f}")
            for n in args.labels:
                row = f"    {n} labels: likelihood threshold acc {threshold_accuracy(lk, y, n, args.draws):.3f}"
                for k, layer in enumerate(args.layers):
                    acc, a = logistic_accuracy(x[:, k].numpy(), y, n, args.draws)
                    row += f" | layer {layer} acc {acc:.3f} AUC {a:.3f}"
                print(row)


if __name__ == "__main__":
    main()
