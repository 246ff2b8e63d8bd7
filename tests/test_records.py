import pytest

from stages.errors import SuperalignError
from stages.records import atomic_path, read_jsonl, record_id, write_jsonl


def test_record_id_is_stable_and_content_based():
    assert record_id("a", 1) == record_id("a", 1)
    assert record_id("a", 1) != record_id("a", 2)
    assert len(record_id("x")) == 16


def test_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b",\n')
    with pytest.raises(SuperalignError, match=r"q.jsonl:2: malformed JSON"):
        read_jsonl(path)


def test_missing_key_and_non_object(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a"}\n{"prompt": "x"}\n')
    with pytest.raises(SuperalignError, match=r":2: record lacks id"):
        read_jsonl(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(SuperalignError, match="expected a JSON object"):
        read_jsonl(path)
    with pytest.raises(SuperalignError, match="file not found"):
        read_jsonl(tmp_path / "absent.jsonl")


def test_write_is_atomic_when_interrupted(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"id": "old"}])

    def exploding():
        yield {"id": "new-1"}
        raise KeyboardInterrupt  # a stage killed halfway through writing

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, exploding())
    assert read_jsonl(path) == [{"id": "old"}]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp left behind


def test_atomic_directory_replace(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "b").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
