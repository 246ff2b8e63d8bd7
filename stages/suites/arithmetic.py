"""The arithmetic suite: generated problems with gold answers, in difficulty buckets.

Arithmetic is where gold exists, so it is where the loop can be measured honestly: the
verifier critic is exact, a weak critic's errors are countable, and held-out accuracy is
a number nobody has to trust a judge for.

Run `python -m stages.suites.arithmetic` to (re)write the fixed held-out set; a test checks the
committed file still equals what the seed produces.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass

from ..records import record_id, write_jsonl
from .base import CommittedSuite

SUITE = "arithmetic"
OPERATIONS = ("+", "-", "*")
OP_NAMES = {"+": "add", "-": "sub", "*": "mul"}
# Without it the 135M learner explains instead of answering; with it, it scores ~73%
# greedy on 1-digit addition and ~12% on 2-digit addition (measured on the held-out set).
INSTRUCTION = "Answer with just the number."


@dataclass(frozen=True)
class Difficulty:
    """The knobs of one problem family: operand width, allowed operations, chain length."""

    digits: int = 1  # digits per operand
    ops: tuple[str, ...] = ("+",)  # operations drawn from: + - *
    steps: int = 1  # operations per problem (steps + 1 operands)

    def __post_init__(self):
        if not 1 <= self.digits <= 6:
            raise ValueError(f"digits must be 1..6, got {self.digits}")
        if not 1 <= self.steps <= 4:
            raise ValueError(f"steps must be 1..4, got {self.steps}")
        bad = [op for op in self.ops if op not in OPERATIONS]
        if bad or not self.ops:
            raise ValueError(f"ops must be a non-empty subset of {OPERATIONS}, got {self.ops}")

    @property
    def bucket(self) -> str:
        """A short stable name, e.g. `d2_add_s1`; safe as an MLflow metric name."""
        return "_".join([f"d{self.digits}", *(OP_NAMES[op] for op in self.ops), f"s{self.steps}"])

    @property
    def capacity(self) -> int:
        """How many distinct problems this family holds (operands x operator choices)."""
        values = 9 if self.digits == 1 else 9 * 10 ** (self.digits - 1)
        return values ** (self.steps + 1) * len(self.ops) ** self.steps

    def as_dict(self) -> dict:
        return {"digits": self.digits, "ops": list(self.ops), "steps": self.steps}


def evaluate_expression(operands: list[int], operators: list[str]) -> int:
    """Standard precedence: multiplications first, then + and - left to right."""
    terms, signs = [operands[0]], []
    for op, value in zip(operators, operands[1:]):
        if op == "*":
            terms[-1] *= value
        else:
            signs.append(op)
            terms.append(value)
    total = terms[0]
    for sign, term in zip(signs, terms[1:]):
        total = total + term if sign == "+" else total - term
    return total


def make_problem(rng: random.Random, difficulty: Difficulty) -> dict:
    """One problem record drawn from `difficulty` with the caller's seeded `rng`."""
    low = 1 if difficulty.digits == 1 else 10 ** (difficulty.digits - 1)
    high = 10**difficulty.digits - 1
    operands = [rng.randint(low, high) for _ in range(difficulty.steps + 1)]
    operators = [rng.choice(difficulty.ops) for _ in range(difficulty.steps)]
    expression = " ".join(
        [str(operands[0])] + [f"{op} {value}" for op, value in zip(operators, operands[1:])]
    )
    prompt = f"What is {expression}? {INSTRUCTION}"
    return {
        "id": record_id(SUITE, prompt),
        "suite": SUITE,
        "prompt": prompt,
        "gold": evaluate_expression(operands, operators),
        "bucket": difficulty.bucket,
        "difficulty": difficulty.as_dict(),
    }


def make_problems(
    mix: list[tuple[Difficulty, int]], seed: int, exclude: set[str] = frozenset()
) -> list[dict]:
    """`count` distinct problems per difficulty, skipping ids in `exclude` (e.g. held-out)."""
    rng = random.Random(seed)
    seen = set(exclude)
    problems = []
    for difficulty, count in mix:
        made, attempts = 0, 0
        while made < count:
            attempts += 1
            if attempts > 100 * count + 1000:
                raise ValueError(f"cannot draw {count} distinct problems for {difficulty.bucket}")
            problem = make_problem(rng, difficulty)
            if problem["id"] in seen:
                continue
            seen.add(problem["id"])
            problems.append(problem)
            made += 1
    return problems


# --- the fixed held-out evaluation set ---------------------------------------------

HELDOUT_SEED = 2412_11145  # the paper's arXiv number: fixed forever, never reused for attacks
HELDOUT_MIX: list[tuple[Difficulty, int]] = [
    (Difficulty(digits=1, ops=("+",)), 40),
    (Difficulty(digits=2, ops=("+",)), 40),
    (Difficulty(digits=2, ops=("-",)), 30),
    (Difficulty(digits=1, ops=("*",)), 30),
    (Difficulty(digits=1, ops=("+", "-"), steps=2), 30),
    (Difficulty(digits=2, ops=("*",)), 20),
    (Difficulty(digits=3, ops=("+",)), 25),
    (Difficulty(digits=1, ops=("+", "-", "*"), steps=2), 25),
]


def heldout_problems() -> list[dict]:
    return make_problems(HELDOUT_MIX, seed=HELDOUT_SEED)


class GeneratorSource:
    """Fresh problems from the difficulty buckets, never a held-out one.

    A bucket offers half of the problems it holds beyond the held-out ones, so that
    drawing distinct problems stays quick.
    """

    def __init__(self, mix: list[tuple[Difficulty, int]], heldout: list[dict]):
        self._by_name = {d.bucket: d for d, _ in mix}
        self.buckets = list(self._by_name)
        self._heldout_ids = {q["id"] for q in heldout}
        self._taken = Counter(q.get("bucket") for q in heldout)

    def room(self) -> dict[str, int]:
        return {b: max(0, (d.capacity - self._taken[b]) // 2) for b, d in self._by_name.items()}

    def draw(self, counts: dict[str, int], seed: int) -> list[dict]:
        mix = [(self._by_name[b], n) for b, n in counts.items() if n]
        return make_problems(mix, seed=seed, exclude=self._heldout_ids)


class ArithmeticSuite(CommittedSuite):
    """Gold answers, so the loop is measured honestly: the verifier is exact, a weak
    critic's errors are countable, held-out accuracy needs no judge."""

    name = SUITE

    @property
    def source(self) -> str:
        return f"generated (seed {HELDOUT_SEED}); {self.files}/"

    def attack_source(self, pool: list[dict], heldout: list[dict]) -> GeneratorSource:
        return GeneratorSource(HELDOUT_MIX, heldout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the fixed arithmetic held-out set.")
    parser.add_argument("--out", default=f"data/{SUITE}/heldout.jsonl")
    args = parser.parse_args(argv)
    count = write_jsonl(args.out, heldout_problems())
    print(f"wrote {count} held-out problems to {args.out}")


if __name__ == "__main__":
    main()
