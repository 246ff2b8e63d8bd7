"""What every critic returns, and how verdicts are read and compared.

A verdict is `{score, critique, confidence, source}`; `score` is in [0, 1] (accepted at
>= ACCEPT) or None when the critic gave none. A None is counted, never guessed.
"""

from __future__ import annotations

from typing import Protocol

ACCEPT = 0.5  # a score at or above this is an acceptable response


def verdict(score, critique: str, confidence, source: str, **extra) -> dict:
    return {
        "score": score,
        "critique": critique,
        "confidence": confidence,
        "source": source,
    } | extra


class Critic(Protocol):
    name: str

    def judge(self, items: list[dict]) -> list[dict]:
        """One verdict per item (`prompt`, `response`, maybe `gold`), same order."""


def accepted(v: dict) -> bool | None:
    return None if v["score"] is None else v["score"] >= ACCEPT


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Agreement beyond chance between two binary raters; None when undefined."""
    if not a or len(a) != len(b):
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def ranking_auc(scores: list[float], positive: list[bool]) -> float:
    """How often a positive item scores above a negative one (ties count half): 0.5 is
    chance, below it the score runs backwards."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / max(1, len(pos) * len(neg))
