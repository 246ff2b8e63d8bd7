"""JSON Lines records: stable content ids, strict reading, atomic writing.

Every artifact a stage writes goes through `atomic_write`, so a killed stage leaves either
the old file or the new one, never a half file that DVC or the next stage would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import SuperalignError


def record_id(*parts: Any) -> str:
    """A stable id from the content that defines a record (order of parts matters)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_jsonl_lines(path: str | Path, missing: str = "") -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for every non-blank line; a malformed line or a missing
    file is a one-line error (`missing` says what the file was for)."""
    path = Path(path)
    if not path.is_file():
        raise SuperalignError(f"{path}: file not found{f' ({missing})' if missing else ''}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise SuperalignError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
    return rows


def read_jsonl(path: str | Path, required: Iterable[str] = ("id",)) -> list[dict]:
    """Read a JSON Lines file; any malformed line or missing key is a one-line error."""
    required = tuple(required)
    records = []
    for lineno, record in read_jsonl_lines(path):
        if not isinstance(record, dict):
            raise SuperalignError(f"{path}:{lineno}: expected a JSON object per line")
        missing = [key for key in required if key not in record]
        if missing:
            raise SuperalignError(f"{path}:{lineno}: record lacks {', '.join(missing)}")
        records.append(record)
    return records


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it into place only if the block succeeds.

    Works for files and directories. The temporary lives in the same directory so the
    final `os.replace` is atomic on the same filesystem.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write records atomically, one compact JSON object a line; returns the count."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically (metrics, manifests)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise SuperalignError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuperalignError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
