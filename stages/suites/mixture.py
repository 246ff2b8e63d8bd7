"""A mixture: one campaign drawing each round from several suites, by weight.

`suite.mix` names the other suites and their share of each round's attack queries; the
suite `suite.name` names gets the rest. Held-out sets, pools and seeds are the parts'
own, side by side (every record keeps its `suite` field), so evaluation reports each
part's held-out metrics, and the alignment tax on one (say arithmetic, while training
safety) is measured every round. Each item is graded by the suite it came from.
"""

from __future__ import annotations

import random

from ..errors import SuperalignError
from .base import Suite
from .grading import Grade


class MixtureSuite(Suite):
    def __init__(self, params, data_dir, parts: list[tuple[Suite, float]]):
        super().__init__(params, data_dir)
        self.parts = {suite.name: (suite, weight) for suite, weight in parts}
        if len(self.parts) != len(parts):
            raise SuperalignError("suite.mix: a suite is named twice")
        self.name = "+".join(self.parts)
        self.source = "; ".join(f"{n} ({w:g}): {s.source}" for n, (s, w) in self.parts.items())

    def _part(self, item: dict) -> Suite:
        name = item.get("suite")
        if name not in self.parts:
            raise SuperalignError(
                f"suite {self.name}: item {item.get('id')} is from suite {name!r}, not a part"
            )
        return self.parts[name][0]

    def _by_part(self, items: list[dict]) -> dict[str, list[dict]]:
        out = {name: [] for name in self.parts}
        for item in items:
            out[self._part(item).name].append(item)
        return out

    def heldout(self) -> list[dict]:
        return [q for suite, _ in self.parts.values() for q in suite.heldout()]

    def pool(self) -> list[dict]:
        return [q for suite, _ in self.parts.values() for q in suite.pool()]

    def seeds(self) -> list[dict]:
        return [q for suite, _ in self.parts.values() for q in suite.seeds()]

    def transfer(self) -> list[dict]:
        return [q for suite, _ in self.parts.values() for q in suite.transfer()]

    def default_rubric(self) -> str:
        return "\n\n".join(
            f"For {name} requests:\n{suite.rubric().strip()}"
            for name, (suite, _) in self.parts.items()
        )

    def attack_sources(self, pool, heldout):
        pools, held = self._by_part(pool), self._by_part(heldout)
        sources = []
        for name, (suite, weight) in self.parts.items():
            for source, share in suite.attack_sources(pools[name], held[name]):
                sources.append((source, weight * share))
        return sources

    def grade(self, item, response) -> Grade | None:
        return self._part(item).grade(item, response)

    def has_ground_truth(self, item) -> bool:
        return self._part(item).has_ground_truth(item)

    def misleading_critique(self, item, response, truth, rng: random.Random) -> str:
        return self._part(item).misleading_critique(item, response, truth, rng)

    def contrast_request(self, item) -> str | None:
        return self._part(item).contrast_request(item)

    def answer_transfers(self, item) -> bool:
        return self._part(item).answer_transfers(item)
