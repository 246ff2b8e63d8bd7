"""A linear probe on a judge model's hidden states, fitted on a handful of expert labels.

A 135M model cannot say in words whether its learner's refusal refuses, and reads a
request's harm from token likelihoods only fairly (ranking AUC 0.76-0.92). Its hidden
states hold more: on a rules campaign's safety verdicts, a logistic regression on the
mean hidden state two thirds of the way up, fitted on 16 random responses, told declining
from answering on the rest 0.94-0.97 of the time, against 0.69-0.93 for the likelihood
reading's best threshold on the same 16 (`python bench/representation_probe.py
rules-strict-fp32`, README: Safety).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEPTH = 2 / 3  # which hidden layer is read: layer 20 of the 135M model's 30 read best
RIDGE = 5.0  # L2 weight on the standardised weights (sklearn's C = 0.1): 16 labels, 576 dims
MIN_PER_CLASS = 2  # fewer labelled examples of either answer: no probe is fitted


def probe_layer(model) -> int:
    """The hidden-state index a probe reads (0 is the embeddings)."""
    return max(1, round(model.config.num_hidden_layers * DEPTH))


@dataclass(frozen=True)
class LinearProbe:
    """P(yes) = sigmoid(weights . features + bias); the features' standardisation is folded
    into the weights, so reading it needs nothing else."""

    weights: tuple[float, ...]
    bias: float

    @classmethod
    def from_dict(cls, d: dict | None) -> LinearProbe | None:
        return cls(tuple(d["weights"]), d["bias"]) if d else None

    def read(self, features: torch.Tensor) -> list[float]:
        w = torch.tensor(self.weights, dtype=torch.float32)
        return torch.sigmoid(features.float() @ w + self.bias).tolist()


def fit_probe(features: torch.Tensor, answers: list[bool]) -> LinearProbe | None:
    """A ridge-penalised logistic regression of `answers` on `features` (items, dims);
    None when either answer has fewer than MIN_PER_CLASS examples."""
    y = torch.tensor([float(a) for a in answers])
    if min(y.sum().item(), len(y) - y.sum().item()) < MIN_PER_CLASS:
        return None
    x = features.double()
    mean, scale = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / scale
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        solver.zero_grad()
        value = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                z @ w + b, y.double(), reduction="sum"
            )
            + RIDGE * (w * w).sum()
        )
        value.backward()
        return value

    solver.step(loss)
    with torch.no_grad():
        raw = w / scale
        return LinearProbe(tuple(raw.tolist()), float(b - (mean * raw).sum()))
