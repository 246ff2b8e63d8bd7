"""The record kinds that flow between stages: the keys each must carry, declared once.

`read_jsonl(path, required=QUERY)` enforces them at every stage boundary, so a malformed
upstream file is caught with its line number instead of as a KeyError mid-run.
"""

# An attack / evaluation query. Optional: `bucket` (what the attacker allocates over),
# ground truth as `gold` or `label` (stages/suites/grading.py), and whatever a suite adds
# (arithmetic's `difficulty`).
QUERY = ("id", "suite", "prompt")

# One learner response to one query; carries the query's fields so later stages need
# no join: id = hash(query_id, sample_index, response).
SAMPLE = ("id", "query_id", "suite", "prompt", "response", "sample_index", "policy")

# One greedy evaluation answer with its score (`correct` null where nothing graded it).
RESULT = ("id", "set", "prompt", "response", "answer", "correct")


def conversation(prompt: str) -> list[dict]:
    """The chat a query becomes: a single user turn."""
    return [{"role": "user", "content": prompt}]


# A critic's (or an expert's) judgement of one sample: id = the sample's id. `score` is
# in [0, 1] or null (no verdict, counted, never guessed); `source` is the critic's name,
# a model id, or "human".
VERDICT = ("id", "query_id", "prompt", "response", "score", "critique", "confidence", "source")

# What stage `revise` asked the learner for and the critic's verdict on it: a verdict
# record plus `kind` (revision: the question again with the critique; contrast: the
# failure the suite names, e.g. a refusal of a benign request), keyed to its query.
REVISION = VERDICT + ("kind",)

# An expert label in the git-tracked labels file, keyed by sample id. Optional fields:
# critique, labeler, round, of ("revision"), and `harmful` (true/false): the expert's
# answer to the yes/no judge's other question, whether the request is harmful.
LABEL = ("id", "score")

# A labelled verdict kept for later rounds' calibration (data/rounds/rK/labelled.jsonl):
# the critic's own view of the sample (its probe readings), whether the expert accepted
# the response, and the round it was labelled in; `harmful` where the expert said.
LABELLED = ("id", "prompt", "response", "accepted", "round")

# A DPO preference pair in TRL's conversational format (message lists).
PAIR = ("id", "prompt", "chosen", "rejected")
