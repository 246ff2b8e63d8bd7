"""Step search: how much of a round's trained adapter to keep, chosen on validation.

A round's LoRA adapter is a step from the previous policy. On the safety suite a full
step often overshoots: the one refusal the 135M learner has spreads to benign requests
within a round, the next round's pairs push the other way, and the rounds swing
(README, Safety). So the adapter scaled by each of `train.step_scales` (its LoRA B
matrices times s: the update times s) answers the suite's validation set greedily, with
the previous policy (s = 0) among them, and the scale kept is the one with the best mean
pass rate over the validation groups (each suite, or each label of a labelled suite:
harmful, benign) among those that keep every group within `train.step_tolerance` of the
base learner's (r0) rate. The bound is the campaign's, not the round's: measured against
the previous policy, each round may spend the tolerance again (benign validation 0.969
-> 0.938 -> 0.906 in two rounds of `step-strict`). No group may pay for another beyond it;
the previous policy itself always qualifies, so a round that only does harm is not
taken.

The validation set is kept from the attacker (`suite.validation_per_bucket`) and graded
by the suite's ground truth, which only a verifier critic may use (train.py checks).

Each round's search writes the kept policy's rates and the base's beside its adapter
(`models/rK/step_validation.json`, under a fingerprint of the validation set and the
generation settings), so round K+1 reads its previous policy's and the base's rates
there instead of answering the set twice more: two of four greedy passes a round.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from .engine import Engine
from .errors import SuperalignError
from .evaluate import evaluate
from .params import EngineParams, EvaluateParams
from .policy import merge_adapter
from .records import read_json, record_id, write_json
from .suites.base import Suite

ADAPTER_WEIGHTS = "adapter_model.safetensors"
RECORD = "step_validation.json"  # beside a searched adapter: its policy's and the base's rates


def scale_adapter(src: Path, dst: Path, scale: float) -> None:
    """Copy the adapter in `src` to `dst` with its update scaled by `scale` (B -> s*B; A is
    left as it is, so the product BA, the update, scales by s). Scale 1 copies the bytes."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    if scale == 1.0:
        return
    weights = load_file(Path(src) / ADAPTER_WEIGHTS)
    # lora_embedding_B where an embedding is a target module
    is_b = [n for n in weights if "lora_B" in n or "lora_embedding_B" in n]
    if not is_b:
        raise SuperalignError(f"{src}: no LoRA B weights in {ADAPTER_WEIGHTS} to scale")
    scaled = {n: (w * scale if n in is_b else w).contiguous() for n, w in weights.items()}
    save_file(scaled, Path(dst) / ADAPTER_WEIGHTS, metadata={"format": "pt"})


def group_of(item: dict) -> str:
    """The validation group: the suite, and the label where the suite has labels."""
    suite = item.get("suite") or "-"
    return f"{suite}/{item['label']}" if item.get("label") else suite


def group_rates(queries: list[dict], results: list[dict]) -> dict[str, float]:
    """Pass rate per group over the graded items (ground truth only)."""
    passed = defaultdict(list)
    for query, result in zip(queries, results, strict=True):
        if result["correct"] is not None:
            passed[group_of(query)].append(bool(result["correct"]))
    return {g: sum(v) / len(v) for g, v in sorted(passed.items())}


def choose_scale(
    rates: dict[float, dict[str, float]], base: dict[str, float], tolerance: float
) -> float:
    """The scale with the best mean group rate among those that keep every group within
    `tolerance` of `base` (the base learner's rates); scale 0, the previous policy, is
    always admissible; ties go to the larger step."""
    if 0.0 not in rates:
        raise ValueError("choose_scale needs the previous policy's rates (scale 0)")

    def admissible(scale: float) -> bool:
        return scale == 0.0 or all(rates[scale][g] >= base[g] - tolerance - 1e-9 for g in base)

    def mean(scale: float) -> float:
        return sum(rates[scale].values()) / len(rates[scale])

    return max((s for s in rates if admissible(s)), key=lambda s: (round(mean(s), 9), s))


def check_validation(validation: list[dict], suite: Suite) -> None:
    """A set the search can choose on: not empty, and some items graded by ground truth."""
    if not validation:
        raise SuperalignError(
            "train.step_scales: the step search answers the suite's validation set, which is "
            "empty; set suite.validation_per_bucket (e.g. 8)"
        )
    if not any(suite.has_ground_truth(q) for q in validation):
        raise SuperalignError(
            f"train.step_scales: no validation item of suite '{suite.name}' has ground truth "
            "to grade the step by"
        )


def validation_answering(eval_params: EvaluateParams, max_new_tokens: int | None) -> EvaluateParams:
    """How the search answers the validation set: as `evaluate` does, every item (the
    quick profiles' `evaluate.limit` would cut whole groups off the guard), within
    `train.step_max_new_tokens` where that is set."""
    return dataclasses.replace(
        eval_params, limit=None, max_new_tokens=max_new_tokens or eval_params.max_new_tokens
    )


def validation_fingerprint(
    validation: list[dict], engine_params: EngineParams, eval_params: EvaluateParams
) -> str:
    """What a policy's validation rates depend on besides its weights: the items and how
    they are answered. A record under another fingerprint is not reused."""
    return record_id(validation, dataclasses.asdict(engine_params), dataclasses.asdict(eval_params))


def read_record(policy_dir: Path, fingerprint: str) -> dict | None:
    """The rates a previous search stored beside `policy_dir`'s adapter, if they were
    measured the same way; None (answer the set again) otherwise, or if unreadable."""
    try:
        record = read_json(Path(policy_dir) / RECORD)
    except SuperalignError:  # none (round 1: the base) or unreadable: measure instead
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    if not all(isinstance(record.get(k), dict) for k in ("rates", "base")):
        return None
    return record


def write_record(adapter_dir: Path, fingerprint: str, report: dict) -> None:
    """Store the kept policy's validation rates and the base's (from `search_step`'s
    report) beside its adapter, for the next round's search."""
    kept = report["step_validation"][f"scale_{report['step_scale']:g}"]
    rates = {group: rate for group, rate in kept.items() if group != "mean"}
    record = {"fingerprint": fingerprint, "rates": rates, "base": report["step_base"]}
    write_json(Path(adapter_dir) / RECORD, record)


def search_step(
    adapter_dir: Path,
    scales: tuple[float, ...],
    tolerance: float,
    validation: list[dict],
    suite: Suite,
    load_previous: Callable[[], tuple],
    load_base: Callable[[], tuple] | None,
    engine_params: EngineParams,
    eval_params: EvaluateParams,
    scratch: Path,
    known: dict | None = None,
) -> tuple[float, dict]:
    """(scale kept, metrics): each scale's validation rates, and the base learner's
    (`load_base` None: the previous policy is the base, round 1), answered as
    `eval_params` says (`validation_answering`). `known`: the previous
    policy's and the base's rates as its own search stored them (`read_record`), which
    are then not measured again."""
    check_validation(validation, suite)

    def validation_rates(model, tokenizer) -> dict[str, float]:
        engine = Engine(model, tokenizer, engine_params)
        results, _ = evaluate({"validation": validation}, engine, eval_params, suite)
        return group_rates(validation, results)

    # the previous policy is loaded (base + adapter chain, merged) once; each scale merges
    # its adapter into a copy
    previous, tokenizer = load_previous()
    rates: dict[float, dict[str, float]] = {0.0: known["rates"]} if known else {}
    for scale in sorted((set(scales) | {0.0}) - set(rates)):
        model = previous
        if scale:
            scaled = Path(scratch) / f"scale_{scale:g}"
            scale_adapter(adapter_dir, scaled, scale)
            model = merge_adapter(copy.deepcopy(previous), scaled)
        rates[scale] = validation_rates(model, tokenizer)
        del model
        gc.collect()
    del previous
    if known:
        base = known["base"]
    else:
        base = rates[0.0] if load_base is None else validation_rates(*load_base())
    chosen = choose_scale(rates, base, tolerance)
    report = {
        "step_scale": chosen,
        "step_base": base,
        "step_reused": known is not None,
        "step_validation": {
            f"scale_{s:g}": r | {"mean": sum(r.values()) / len(r)} for s, r in rates.items()
        },
    }
    return chosen, report
