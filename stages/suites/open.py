"""The open-ended suite: risky requests with no ground truth, judged by an LLM.

Its held-out prompts and seed topics are committed under data/open/; it has no pool and
no generator, so its queries come from the `llm` attacker, and its answers are graded by
the LLM judge against data/open/constitution.md.
"""

from __future__ import annotations

from .base import Suite, read_items

SUITE = "open"


class OpenSuite(Suite):
    name = SUITE

    @property
    def source(self) -> str:
        return f"{self.data_dir / SUITE}/"

    def heldout(self) -> list[dict]:
        return read_items(self.data_dir / SUITE / "heldout.jsonl")

    def seeds(self) -> list[dict]:
        return read_items(self.data_dir / SUITE / "seeds.jsonl")

    def default_rubric(self) -> str:
        return (self.data_dir / SUITE / "constitution.md").read_text(encoding="utf-8")
