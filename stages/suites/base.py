"""The `Suite` interface: everything task-specific, so that no stage names a task.

A suite is one module (arithmetic.py, open.py) or a user's file (jsonl.py). It answers:

- **data**, read once per `dvc repro` by the `suite` stage, which writes it to
  `data/suite/` for the other stages (and DVC) to see:
  `heldout()` the evaluation items, never attacked; `pool()` items the attacker may draw
  (disjoint from held-out; empty for a generator); `seeds()` topics for the `llm`
  attacker; `rubric()` what the LLM judge applies.
- **attack**: `attack_source(pool, heldout)` -> a `QuerySource`: the buckets the adaptive
  attacker's bandit allocates over, how many fresh items each can give, and how to draw
  them (a generator, or a pool). A mixture (mixture.py) has several, each with its share
  of the round's queries (`attack_sources`).
- **ground truth** (optional): `grade(item, response)` -> Grade | None, used by the
  verifier critic and by evaluation; `misleading_critique` for the noisy critic;
  `set_metrics(results)` for the metrics only ground truth allows. The defaults read an
  item's `gold` or `label` (grading.py), so most suites write none of these.

Query records are `{"id", "suite", "prompt"}` plus optional `bucket`, `gold`, `label`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from ..errors import SuperalignError
from ..params import SuiteParams
from ..records import read_jsonl, record_id
from ..schema import QUERY
from . import grading

SPLITS = ("train", "heldout")  # a user row's optional `split`: attack pool or held-out


def row_split(row: dict, where: str) -> str | None:
    """A data row's optional `split`, checked; `where` names the row in the error."""
    split = row.get("split")
    if split is not None and split not in SPLITS:
        raise SuperalignError(f"{where}: split must be 'train' or 'heldout', got {split!r}")
    return split


class QuerySource(Protocol):
    """Where the adaptive attacker's fresh queries come from."""

    buckets: list[str]  # in a fixed order: the bandit's arms

    def room(self) -> dict[str, int]:
        """How many distinct fresh items each bucket can still give this round."""

    def draw(self, counts: dict[str, int], seed: int) -> list[dict]:
        """`counts[b]` distinct items from each bucket b, deterministic in `seed`."""


class PoolSource:
    """Draws without repeats from a fixed pool of items, bucket by bucket."""

    def __init__(self, pool: list[dict]):
        self._by_bucket: dict[str, list[dict]] = {}
        for item in sorted(pool, key=lambda q: q["id"]):  # file order must not matter
            self._by_bucket.setdefault(bucket_of(item), []).append(item)
        self.buckets = sorted(self._by_bucket)

    def room(self) -> dict[str, int]:
        return {b: len(items) for b, items in self._by_bucket.items()}

    def items(self, bucket: str) -> list[dict]:
        return list(self._by_bucket.get(bucket, []))

    def draw(self, counts: dict[str, int], seed: int) -> list[dict]:
        rng = random.Random(seed)
        drawn = []
        for b in self.buckets:
            n = counts.get(b, 0)
            if n > len(self._by_bucket[b]):
                raise SuperalignError(
                    f"attack: bucket '{b}' holds {len(self._by_bucket[b])} items, asked {n}"
                )
            drawn += rng.sample(self._by_bucket[b], n)
        return drawn


class Suite(ABC):
    """A task: its data, how the attacker draws from it, and its ground truth if any."""

    name: str  # short, stable: it goes into every record id and MLflow param
    source: str  # where the data comes from, for messages and `superalign suites`

    def __init__(self, params: SuiteParams, data_dir: Path):
        self.params, self.data_dir = params, Path(data_dir)

    # --- data: read by the `suite` stage only ------------------------------------------

    @abstractmethod
    def heldout(self) -> list[dict]:
        """The evaluation items; the attacker never sees them."""

    def pool(self) -> list[dict]:
        """Items the attacker may draw from; [] for a generator or an llm-only suite."""
        return []

    def seeds(self) -> list[dict]:
        """Seed topics (`{"id", "prompt", "topic"}`) for the llm attacker."""
        return []

    def transfer(self) -> list[dict]:
        """Evaluation items from another source and style than anything a stage draws from
        (held-out, pool, validation): whether the behaviour transfers. [] for none."""
        return []

    @abstractmethod
    def default_rubric(self) -> str:
        """The principles the LLM judge grades against, unless params name a rubric file."""

    def rubric(self) -> str:
        if self.params.rubric:
            path = Path(self.params.rubric)
            if not path.is_file():
                raise SuperalignError(f"suite.rubric: {path}: file not found")
            return path.read_text(encoding="utf-8")
        return self.default_rubric()

    # --- attack -------------------------------------------------------------------------

    def attack_source(self, pool: list[dict], heldout: list[dict]) -> QuerySource:
        return PoolSource(pool)

    def attack_sources(
        self, pool: list[dict], heldout: list[dict]
    ) -> list[tuple[QuerySource, float]]:
        """Each source with its share of the round's queries: one, all of them, unless the
        suite is a mixture."""
        return [(self.attack_source(pool, heldout), 1.0)]

    # --- ground truth -------------------------------------------------------------------

    def grade(self, item: dict, response: str) -> grading.Grade | None:
        return grading.grade(item, response)

    def has_ground_truth(self, item: dict) -> bool:
        return grading.has_ground_truth(item)

    def misleading_critique(
        self, item: dict, response: str, truth: grading.Grade, rng: random.Random
    ) -> str:
        return grading.misleading_critique(item, response, truth, rng)

    def set_metrics(self, results: list[dict]) -> dict:
        return grading.ground_truth_metrics(results)

    def contrast_request(self, item: dict) -> str | None:
        """A request that makes the learner produce the failure to avoid on `item`, for a
        contrast pair when all its responses were fine; None: no contrast."""
        return grading.contrast_request(item)

    def answer_transfers(self, item: dict) -> bool:
        """Whether a response accepted on another request of this suite may stand for one
        to `item` (build_prefs.revision_borrow); False: answers are about their question."""
        return grading.answer_transfers(item)


class CommittedSuite(Suite):
    """A built-in suite whose files are committed under data/<name>/: heldout.jsonl,
    seeds.jsonl and constitution.md (its rubric)."""

    @property
    def files(self) -> Path:
        return self.data_dir / self.name

    @property
    def source(self) -> str:
        return f"{self.files}/"

    def heldout(self) -> list[dict]:
        return read_items(self.files / "heldout.jsonl")

    def seeds(self) -> list[dict]:
        return read_items(self.files / "seeds.jsonl")

    def default_rubric(self) -> str:
        return (self.files / "constitution.md").read_text(encoding="utf-8")


def bucket_of(item: dict) -> str:
    return item.get("bucket") or "all"


def read_items(path: Path) -> list[dict]:
    """Committed query records of a built-in suite, checked like any stage input."""
    return read_jsonl(path, required=QUERY)


def query(suite: str, prompt: str, **fields) -> dict:
    """A query record with its content id; None-valued optional fields are dropped."""
    extra = {k: v for k, v in fields.items() if v is not None}
    return {"id": record_id(suite, prompt), "suite": suite, "prompt": prompt} | extra


def split_items(
    items: list[dict], heldout_share: float, seed: int
) -> tuple[list[dict], list[dict]]:
    """(attack pool, held-out): rows with a `split` keep it; the rest are split per bucket
    by `seed`, independent of file order, so that each bucket keeps about `heldout_share`
    of its unsplit rows for evaluation and at least one row for the attacker."""
    pool = [i for i in items if i.get("split") == "train"]
    heldout = [i for i in items if i.get("split") == "heldout"]
    unsplit: dict[str, list[dict]] = {}
    for item in items:
        if item.get("split") is None:
            unsplit.setdefault(bucket_of(item), []).append(item)
    for bucket in sorted(unsplit):
        rows = sorted(unsplit[bucket], key=lambda i: i["id"])
        random.Random(f"{seed}:{bucket}").shuffle(rows)
        k = min(len(rows) - 1, max(1, round(len(rows) * heldout_share))) if len(rows) > 1 else 0
        heldout += rows[:k]
        pool += rows[k:]
    return _without_split(pool), _without_split(heldout)


VALIDATION_SEED = 20_251_126  # fixed forever: the same suite sets aside the same items


def validation_split(
    suite: Suite, pool: list[dict], heldout: list[dict], per_bucket: int
) -> tuple[list[dict], list[dict]]:
    """(attack pool, validation): `per_bucket` items of every attackable bucket set aside,
    drawn the way the attacker draws (a pool bucket keeps at least one item to attack
    with; a generator bucket makes fresh ones, which the attack stage then excludes like
    held-out items). Deterministic; no validation item is held out or left in the pool."""
    if per_bucket <= 0:
        return pool, []
    validation = []
    for source, _ in suite.attack_sources(pool, heldout):
        keep = 1 if isinstance(source, PoolSource) else 0
        counts = {b: min(per_bucket, n - keep) for b, n in source.room().items() if n > keep}
        validation += source.draw(counts, VALIDATION_SEED)
    taken = {q["id"] for q in validation}
    return [q for q in pool if q["id"] not in taken], validation


def _without_split(rows: list[dict]) -> list[dict]:
    """The `split` column has done its job once the rows are split."""
    return [{k: v for k, v in r.items() if k != "split"} for r in rows]


# word-bigram overlap (text.near_duplicate) above which an item duplicates a transfer item
TRANSFER_OVERLAP = 0.5


def check_suite_data(
    suite: Suite,
    heldout: list[dict],
    pool: list[dict],
    validation: list[dict] = (),
    transfer: list[dict] = (),
) -> None:
    """The contract every suite's data keeps, whoever wrote the suite: unique ids, pool,
    validation, held-out and transfer disjoint, every held-out bucket attackable, no empty
    held-out set."""
    where = f"suite '{suite.name}' ({suite.source})"
    if not heldout:
        raise SuperalignError(f"{where}: the held-out set is empty")
    for name, items in (("held-out", heldout), ("attack pool", pool), ("transfer set", transfer)):
        dupes = [i for i, n in Counter(q["id"] for q in items).items() if n > 1]
        if dupes:
            raise SuperalignError(f"{where}: the {name} repeats item {dupes[0]}")
    parts = {
        "held out": heldout,
        "in the attack pool": pool,
        "in the validation set": validation,
        "in the transfer set": transfer,
    }
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = {q["id"] for q in parts[a]} & {q["id"] for q in parts[b]}
            if shared:
                raise SuperalignError(f"{where}: item {sorted(shared)[0]} is both {a} and {b}")
    buckets = {b for source, _ in suite.attack_sources(pool, heldout) for b in source.buckets}
    if buckets:
        orphans = sorted({bucket_of(q) for q in heldout} - buckets)
        if orphans:
            raise SuperalignError(
                f"{where}: bucket '{orphans[0]}' has held-out items but none to attack with "
                "(give it rows with split 'train' or no split)"
            )


def describe(suite: Suite, heldout: list[dict], pool: list[dict], seeds: Iterable[dict]) -> dict:
    """The facts `superalign suites` shows and `data/suite/suite.json` records."""
    sources = [source for source, _ in suite.attack_sources(pool, heldout)]
    room = {b: n for source in sources for b, n in source.room().items()}
    graded = sum(suite.has_ground_truth(q) for q in heldout)
    held = Counter(bucket_of(q) for q in heldout)
    generated = any(not isinstance(s, PoolSource) and s.buckets for s in sources)
    return {
        "name": suite.name,
        "source": suite.source,
        "heldout": len(heldout),
        "pool": len(pool),
        "draws_from": " + ".join((["pool"] if pool else []) + (["generator"] if generated else []))
        or "nothing (llm attacker only)",
        "ground_truth": "all" if graded == len(heldout) else ("some" if graded else "none"),
        "seeds": len(list(seeds)),
        "buckets": {
            b: {"heldout": held.get(b, 0), "attackable": room.get(b, 0)}
            for b in sorted(set(held) | set(room))
        },
    }
