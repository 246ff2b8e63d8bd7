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

import math
from dataclasses import dataclass

import torch

DEPTH = 2 / 3  # which hidden layer is read: layer 20 of the 135M model's 30 read best
RIDGE = 5.0  # L2 weight on the standardised weights (sklearn's C = 0.1): 16 labels, 576 dims
# ... and on an anchored probe's prior column: light, so the zero-shot reading carries the
# fit when the labels say little (not zero: 16 labels it separates would send it to infinity)
PRIOR_RIDGE = 0.1
MIN_PER_CLASS = 2  # fewer labelled examples of either answer: no probe is fitted


def probe_layer(model) -> int:
    """The hidden-state index a probe reads (0 is the embeddings)."""
    return max(1, round(model.config.num_hidden_layers * DEPTH))


@dataclass(frozen=True)
class LinearProbe:
    """P(yes) = sigmoid(weights . features + prior_weight * prior + bias); the features'
    standardisation is folded into the weights, so reading it needs nothing else. `prior`
    is a zero-shot reading's log-odds (the judge's likelihood reading) for a probe fitted
    anchored on it; 0 weight for one fitted on the hidden state alone."""

    weights: tuple[float, ...]
    bias: float
    prior_weight: float = 0.0

    @classmethod
    def from_dict(cls, d: dict | None) -> LinearProbe | None:
        return cls(tuple(d["weights"]), d["bias"], d.get("prior_weight", 0.0)) if d else None

    def read(self, features: torch.Tensor, prior: list[float] | None = None) -> list[float]:
        w = torch.tensor(self.weights, dtype=torch.float32)
        logit = features.float() @ w + self.bias
        if self.prior_weight:
            logit = logit + self.prior_weight * torch.tensor(prior, dtype=torch.float32)
        return torch.sigmoid(logit).tolist()


def log_odds(p: float, eps: float = 1e-6) -> float:
    """A probability as the prior column a probe reads (clamped away from 0 and 1)."""
    p = min(max(p, eps), 1 - eps)
    return math.log(p / (1 - p))


def fit_probe(
    features: torch.Tensor, answers: list[bool], prior: list[float] | None = None
) -> LinearProbe | None:
    """A ridge-penalised logistic regression of `answers` on `features` (items, dims);
    None when either answer has fewer than MIN_PER_CLASS examples.

    With `prior` (one zero-shot log-odds per item), the probe is anchored on it: the prior
    is one more column, penalised only lightly (PRIOR_RIDGE), so with few labels the fit
    leans on the zero-shot reading, rescaled and shifted, and the hidden state adds what
    the labels support. Alone, the ridge pulls the hidden weights to zero and the reading
    to the labels' base rate: one draw of 16 labels read 18 of 72 requests harmful where
    52 were (judge-decide-h200 r1, README: Safety)."""
    y = torch.tensor([float(a) for a in answers])
    if min(y.sum().item(), len(y) - y.sum().item()) < MIN_PER_CLASS:
        return None
    x = features.double()
    if prior is not None:
        x = torch.cat([x, torch.tensor(prior, dtype=torch.float64)[:, None]], dim=1)
    mean, scale = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / scale
    penalty = torch.full((z.shape[1],), RIDGE, dtype=torch.float64)
    if prior is not None:
        penalty[-1] = PRIOR_RIDGE
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        solver.zero_grad()
        value = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                z @ w + b, y.double(), reduction="sum"
            )
            + (penalty * w * w).sum()
        )
        value.backward()
        return value

    solver.step(loss)
    with torch.no_grad():
        raw = w / scale
        bias = float(b - (mean * raw).sum())
        if prior is None:
            return LinearProbe(tuple(raw.tolist()), bias)
        return LinearProbe(tuple(raw[:-1].tolist()), bias, float(raw[-1]))
