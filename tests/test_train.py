import dataclasses
import json

import pytest
import torch

from stages.errors import SuperalignError
from stages.models import load_checkpoint
from stages.params import RoundSpec, TrainParams
from stages.policy import load_policy
from stages.records import read_jsonl, write_jsonl
from stages.train import cap_pairs, replayed_pairs, train

PARAMS = TrainParams(
    batch_size=4, lora_r=4, lora_alpha=8, max_length=64, learning_rate=1e-3, epochs=1.0
)


def pairs(n=8):
    return [
        {
            "id": str(i),
            "prompt": [{"role": "user", "content": f"What is {i} + 1?"}],
            "chosen": [{"role": "assistant", "content": str(i + 1)}],
            "rejected": [{"role": "assistant", "content": "no idea"}],
        }
        for i in range(n)
    ]


def logits(model, tokenizer):
    # on the model's device: `train` leaves the model where the trainer put it (CUDA on a GPU)
    ids = tokenizer("What is 3 + 1? 4", return_tensors="pt").input_ids.to(model.device)
    with torch.no_grad():
        return model.eval()(ids).logits.float().cpu()


def test_adapter_chain_reproduces_the_trained_policies(tiny_model_dir, tmp_path):
    models = tmp_path / "models"
    base, tok = load_checkpoint(tiny_model_dir)
    base.save_pretrained(models / "r0")
    tok.save_pretrained(models / "r0")
    rounds = {"r1": RoundSpec("r0"), "r2": RoundSpec("r1")}
    expected = {}
    data = tmp_path / "rounds"
    write_jsonl(data / "r0.jsonl", [])  # what prepare writes: r0 was trained on nothing
    for name, prev in (("r1", "r0"), ("r2", "r1")):
        model, tokenizer = load_policy(prev, models, rounds)
        replay = replayed_pairs(data / f"{prev}.jsonl", ["r1"])  # none before r1, r1's 8 at r2
        metrics = train(
            pairs(),
            model,
            tokenizer,
            PARAMS,
            models / name,
            round_name=name,
            replay=replay,
            trained_on_path=data / f"{name}.jsonl",
        )
        assert metrics["replayed_pairs"] == len(replay) == (8 if name == "r2" else 0)
        assert metrics["steps"] == 2 + len(replay) // 4 and metrics["loss_first"] is not None
        expected[name] = logits(model, tokenizer)  # the model the trainer just trained
        names = {p.name for p in (models / name).iterdir()}
        assert names == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
        # PEFT's set of target modules is written sorted: the same training, the same bytes
        targets = json.loads((models / name / "adapter_config.json").read_text())["target_modules"]
        assert targets == sorted(targets)
        assert metrics["attention"] == ("sdpa" if torch.cuda.is_available() else "eager")
        assert model.config._attn_implementation == "sdpa"  # as the caller gave it
    trained_on = read_jsonl(data / "r2.jsonl")
    assert [p["round"] for p in trained_on] == ["r2"] * 8 + ["r1"] * 8
    assert replayed_pairs(data / "r2.jsonl", ["r1"]) == trained_on[8:]  # r1's, replayed again
    assert replayed_pairs(data / "r2.jsonl", []) == []
    r0 = logits(*load_policy("r0", models, rounds))
    for name in ("r1", "r2"):
        policy, tokenizer = load_policy(name, models, rounds)
        # as trainable as a fresh load (frozen weights make CPU bf16 generation slower)
        assert all(p.requires_grad for p in policy.parameters())
        rebuilt = logits(policy, tokenizer)
        assert torch.allclose(rebuilt, expected[name], atol=1e-4)
        assert not torch.allclose(rebuilt, r0, atol=1e-3)  # training changed the policy


def test_empty_preference_set_is_a_clear_error(tiny_model_dir, tmp_path):
    model, tokenizer = load_checkpoint(tiny_model_dir)
    with pytest.raises(SuperalignError, match="preference set is empty"):
        train([], model, tokenizer, PARAMS, tmp_path / "r1")
    assert not (tmp_path / "r1").exists()


def test_cap_drops_replayed_pairs_first_then_the_rounds_own():
    own = [{"id": f"own{i}"} for i in range(6)]
    replay = [{"id": f"old{i}"} for i in range(5)]
    assert cap_pairs(own, replay, None, 0) == (own, replay)
    assert cap_pairs(own, replay, 11, 0) == (own, replay)  # at the cap: nothing dropped
    kept_own, kept_replay = cap_pairs(own, replay, 8, seed=0)
    assert kept_own == own and len(kept_replay) == 2
    assert kept_replay == sorted(kept_replay, key=replay.index)  # drawn, order kept
    kept_own, kept_replay = cap_pairs(own, replay, 4, seed=0)
    assert len(kept_own) == 4 and kept_replay == []
    assert set(map(str, kept_own)) <= set(map(str, own))
    assert cap_pairs(own, replay, 4, seed=0) == (kept_own, kept_replay)  # deterministic
    draws = {tuple(p["id"] for p in cap_pairs(own, replay, 8, seed=s)[1]) for s in range(20)}
    assert len(draws) > 1  # the seed decides which replayed pairs stay


def test_replay_share_keeps_a_drawn_share_of_the_replayed_pairs():
    own = [{"id": f"own{i}"} for i in range(6)]
    replay = [{"id": f"old{i}"} for i in range(10)]
    assert cap_pairs(own, replay, None, 0, replay_share=1.0) == (own, replay)
    kept_own, kept_replay = cap_pairs(own, replay, None, 0, replay_share=0.5)
    assert kept_own == own and len(kept_replay) == 5
    assert kept_replay == sorted(kept_replay, key=replay.index)  # drawn, order kept
    assert cap_pairs(own, replay, None, 0, replay_share=0.5)[1] == kept_replay  # deterministic
    assert cap_pairs(own, replay, None, 0, replay_share=0.0) == (own, [])
    draws = {tuple(p["id"] for p in cap_pairs(own, replay, None, s, 0.5)[1]) for s in range(20)}
    assert len(draws) > 1  # the seed decides which replayed pairs stay
    # the cap then applies to what the share left: 6 own + 5 replayed, capped at 8
    kept_own, kept_replay = cap_pairs(own, replay, 8, 0, replay_share=0.5)
    assert kept_own == own and len(kept_replay) == 2


def test_max_pairs_caps_what_a_round_trains_on(tiny_model_dir, tmp_path):
    model, tokenizer = load_checkpoint(tiny_model_dir)
    replay = [p | {"round": "r1"} for p in pairs(6)]
    metrics = train(
        pairs(4),
        model,
        tokenizer,
        dataclasses.replace(PARAMS, max_pairs=6),
        tmp_path / "r2",
        round_name="r2",
        replay=replay,
        trained_on_path=tmp_path / "trained_on.jsonl",
    )
    trained_on = read_jsonl(tmp_path / "trained_on.jsonl")
    assert [p["round"] for p in trained_on] == ["r2"] * 4 + ["r1"] * 2
    assert metrics["pairs"] == 6 and metrics["replayed_pairs"] == 2
    assert metrics["dropped_by_cap"] == 4
    assert metrics["steps"] == 2  # 6 pairs in batches of 4


@pytest.mark.parametrize("cap", [0, -3])
def test_max_pairs_must_be_positive(cap):
    with pytest.raises(ValueError, match="max_pairs must be >= 1"):
        TrainParams(max_pairs=cap)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_replay_share_must_be_a_share(share):
    with pytest.raises(ValueError, match=r"replay_share must be in \[0, 1\]"):
        TrainParams(replay_share=share)
