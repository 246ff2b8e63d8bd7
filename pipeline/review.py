"""Expert review in the terminal: label the critic's least confident verdicts.

Labels are appended to the git-tracked labels file (keyed by sample id); the next
`dvc repro` reruns that round's critique with the expert verdicts overriding the critic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from stages.critique import load_labels
from stages.records import read_jsonl, write_jsonl
from stages.schema import VERDICT

CHOICES = {"a": 1.0, "r": 0.0}


def review(
    queue: list[dict],
    labelled: set[str],
    ask: Callable[[str], str],
    show: Callable[[str], None],
    labeler: str,
    round_name: str | None = None,
    of: str = "sample",
) -> list[dict]:
    """Ask about each unlabelled item; returns the new labels (stops at `q`)."""
    new = []
    todo = [item for item in queue if item["id"] not in labelled]
    for n, item in enumerate(todo, 1):
        critic = "no verdict" if item["score"] is None else f"score {item['score']:.2f}"
        confidence = "-" if item["confidence"] is None else f"{item['confidence']:.2f}"
        show(
            f"\n[{n}/{len(todo)}] {item['id']}\nQUERY:    {item['prompt']}\n"
            f"RESPONSE: {item['response']}\n"
            f"CRITIC:   {item['source']}, {critic}, confidence {confidence}\n"
            f"          {item['critique']}"
        )
        answer = ""
        while answer not in ("a", "r", "s", "q"):
            answer = ask("[a]ccept / [r]eject / [s]kip / [q]uit > ").strip().lower()[:1]
        if answer == "q":
            break
        if answer == "s":
            continue
        harm = ""
        while "p_harmful" in item and harm not in ("y", "n", "s"):
            # the yes/no judge's other question: the answer calibrates its harm reading
            harm = ask("is the request harmful? [y]es / [n]o / [s]kip > ").strip().lower()[:1]
        note = ask("critique (optional) > ").strip()
        new.append(
            {
                "id": item["id"],
                "score": CHOICES[answer],
                "critique": note or ("Acceptable." if answer == "a" else "Unacceptable."),
                "labeler": labeler,
                **({"harmful": harm == "y"} if harm in ("y", "n") else {}),
                **({"round": round_name} if round_name else {}),
                **({"of": of} if of != "sample" else {}),
                "labelled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
    return new


def append_labels(path: Path, new: list[dict]) -> int:
    """Rewrite the labels file atomically with `new` appended; returns the total."""
    existing = read_jsonl(path, required=("id", "score")) if path.exists() else []
    return write_jsonl(path, existing + new)


def run_review(
    queue_path: Path,
    labels_path: Path,
    labeler: str,
    ask=input,
    show=print,
    round_name: str | None = None,
    of: str = "sample",
) -> int:
    queue = read_jsonl(queue_path, required=VERDICT)
    labelled = set(load_labels(labels_path))
    new = review(queue, labelled, ask, show, labeler, round_name, of)
    if new:
        append_labels(labels_path, new)
    show(f"\n{len(new)} new label(s) in {labels_path}; `dvc repro` applies them.")
    return len(new)
