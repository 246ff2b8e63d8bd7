"""The open-ended suite: risky requests with no ground truth, judged by an LLM.

Its held-out prompts and seed topics are committed under data/open/; it has no pool and
no generator, so its queries come from the `llm` attacker, and its answers are graded by
the LLM judge against data/open/constitution.md.
"""

from __future__ import annotations

from .base import CommittedSuite


class OpenSuite(CommittedSuite):
    name = "open"
