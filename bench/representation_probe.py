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

    python bench/representation_probe.py judge-hidden --judge [--labels 16] [--draws 5]
    python bench/representation_probe.py WORKSPACE --judge   # a campaign's directory, its
                                                             # data/rounds (another machine's)

instead runs the yes/no judge itself over a campaign's verdicts, each way of reading its
probes (critique.harm_probe / refusal_probe), calibrated as the critique stage does on N
verdicts a round labelled at random with the rules' verdict (whole verdicts, not the two
questions), either the round's own N or N from each round so far, and prints its
agreement and kappa with the rules on every verdict of the round (median over draws).
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

from pipeline.profiles import round_files  # noqa: E402
from stages.engine import Engine, EngineParams  # noqa: E402
from stages.models import load_base  # noqa: E402
from stages.params import LearnerParams  # noqa: E402
from stages.schema import conversation  # noqa: E402
from stages.suites import load_suite  # noqa: E402
from stages.suites.refusal import declines, redirects  # noqa: E402
from stages.verdicts import ACCEPT, cohen_kappa  # noqa: E402
from stages.verdicts import ranking_auc as auc  # noqa: E402
from stages.yes_no_judge import YesNoJudge  # noqa: E402


def pooled_states(engine: Engine, items: list[tuple[str, str]], layers: list[int]) -> torch.Tensor:
    """`Engine.pooled_hidden` at each of `layers`: (items, layers, hidden)."""
    return torch.stack([engine.pooled_hidden(items, layer) for layer in layers], dim=1)


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


JUDGES = {  # (harm_probe, refusal_probe)
    "likelihood": ("likelihood", "likelihood"),
    "hidden refusal": ("likelihood", "hidden"),
    "hidden both": ("hidden", "hidden"),
    "anchored both": ("anchored", "anchored"),
    "anchored harm": ("anchored", "hidden"),
}


def judge_agreement(
    engine, rounds: dict[str, list[dict]], per_round: int, draws: int, readings: list[str]
) -> None:
    """Per way of reading the probes: the judge calibrated, as the critique stage does, on
    `per_round` random whole-verdict labels of the round, or on as many from every round
    so far (labels kept from round to round); its agreement / kappa with the rules on
    every verdict of the round (medians over `draws` draws)."""
    suite = load_suite("safety", ROOT / "data")
    items = {
        r: [
            {"id": f"{r}-{i}", "prompt": v["prompt"], "response": v["response"]}
            | {"truth": suite.grade(v, v["response"]).correct}
            for i, v in enumerate(vs)
        ]
        for r, vs in rounds.items()
    }
    # The likelihood, hidden and anchored ways share every reading (the likelihoods, the
    # hidden states): judge once with both probes hidden, then only calibrate per way.
    judge = YesNoJudge(engine, "judge", harm_probe="anchored", refusal_probe="anchored")
    judged = {r: [i | v for i, v in zip(its, judge.judge(its))] for r, its in items.items()}
    for name in readings:
        judge.harm_probe, judge.refusal_probe = JUDGES[name]
        for k, r in enumerate(judged):
            for kept in (False, True):
                agree, kappa = [], []
                for seed in range(draws):
                    pool = [x for q in list(judged)[: k + 1] if kept or q == r for x in judged[q]]
                    picked = [
                        v
                        for q in list(judged)[: k + 1]
                        if kept or q == r
                        for v in random.Random(f"{seed}-{q}").sample(judged[q], per_round)
                    ]
                    judge.calibrate(pool, {v["id"]: v["truth"] for v in picked}, 8)
                    says = [judge.rescore(v)["score"] >= ACCEPT for v in judged[r]]
                    truth = [v["truth"] for v in judged[r]]
                    agree.append(sum(a == t for a, t in zip(says, truth)) / len(truth))
                    kappa.append(cohen_kappa(says, truth) or 0.0)
                labels = f"{per_round * (k + 1 if kept else 1)} labels ({'kept' if kept else 'this round'})"
                print(
                    f"  {r} {name:<15} {labels:<22} agreement {statistics.median(agree):.3f} "
                    f"(p10 {sorted(agree)[len(agree) // 10]:.3f}), kappa {statistics.median(kappa):.2f}",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("campaign")
    ap.add_argument(
        "--labels", type=int, nargs="+", default=[16, 48], help="--judge: the first, a round"
    )
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--layers", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--judge", action="store_true", help="the judge's agreement with the rules")
    ap.add_argument("--readings", nargs="+", choices=list(JUDGES), default=list(JUDGES))
    args = ap.parse_args()
    model, tokenizer = load_base(LearnerParams())
    engine = Engine(model, tokenizer, EngineParams(batch_size=32, dtype="float32"))
    judge = YesNoJudge(engine, "base")
    rounds = {
        name: [
            v
            for v in map(json.loads, path.read_text().splitlines())
            if v.get("label") in ("harmful", "benign")
        ]
        for name, path in sorted(
            round_files(args.campaign, "critique", "verdicts.jsonl", ROOT).items()
        )
    }
    if args.judge:
        print(
            f"{args.campaign}: {', '.join(f'{r} {len(v)}' for r, v in rounds.items())} safety verdicts"
        )
        judge_agreement(engine, rounds, args.labels[0], args.draws, args.readings)
        return
    for round_name, verdicts in rounds.items():
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
