"""Served models: a real `transformers serve` on 127.0.0.1 behind the attacker and the judge."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow.tracking import MlflowClient
from prefect_server import free_port
from served_model import ServedModel
from tiny_model import build_scripted_model
from workspace import dvc, make_workspace

from stages.critics import make_critic
from stages.engine import EngineParams, SamplingParams
from stages.errors import SuperalignError
from stages.params import CritiqueParams, ServedParams
from stages.served import Endpoint, RequestCache, ServedEngine, is_served, parse_endpoint
from stages.suites import load_suite

CHATS = [[{"role": "user", "content": f"Question {i}?"}] for i in range(3)]


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    """A real checkpoint that writes "Score: 4" to any chat: its verdicts are known."""
    return build_scripted_model(tmp_path_factory.mktemp("judge") / "model")


@pytest.fixture(scope="module")
def served_judge(judge_dir, tmp_path_factory):
    server = ServedModel(judge_dir, tmp_path_factory.mktemp("serve")).start()
    yield server
    server.stop()


def test_endpoint_strings():
    endpoint = parse_endpoint(
        "openai:org/judge-7b@http://127.0.0.1:8000/v1/", "critique.judge_model"
    )
    assert endpoint == Endpoint("org/judge-7b", "http://127.0.0.1:8000/v1")
    assert str(endpoint) == "openai:org/judge-7b@http://127.0.0.1:8000/v1"
    assert is_served("openai:m@http://h/v1") and not is_served("embedded:smollm2-135m-instruct")
    for bad in ("openai:judge", "openai:@http://h/v1", "openai:m@ftp://h/v1", "openai:m@h:80"):
        with pytest.raises(SuperalignError, match=r"^critique.judge_model: "):
            parse_endpoint(bad, "critique.judge_model")


def test_missing_api_key_variable(monkeypatch):
    monkeypatch.delenv("SUPERALIGN_TEST_KEY", raising=False)
    endpoint = parse_endpoint("openai:m@https://api.example.com/v1", "x")
    with pytest.raises(SuperalignError, match="SUPERALIGN_TEST_KEY is not set"):
        ServedEngine(endpoint, ServedParams(api_key_env="SUPERALIGN_TEST_KEY"))
    monkeypatch.setenv("SUPERALIGN_TEST_KEY", "sk-test")
    assert ServedEngine(endpoint, ServedParams(api_key_env="SUPERALIGN_TEST_KEY"))


def test_unreachable_host_is_one_line_after_retries(tmp_path):
    endpoint = parse_endpoint(f"openai:m@http://127.0.0.1:{free_port()}/v1", "x")
    params = ServedParams(max_retries=1, timeout_s=2, cache_dir=str(tmp_path))
    with pytest.raises(SuperalignError, match="no connection after 1 retries") as err:
        ServedEngine(endpoint, params).check()
    assert "\n" not in str(err.value)


def test_unknown_model_name(served_judge, tmp_path):
    engine = ServedEngine(Endpoint("nope", served_judge.url), ServedParams(cache_dir=str(tmp_path)))
    with pytest.raises(
        SuperalignError, match=f"has no model 'nope' .it serves: {served_judge.model_dir}"
    ):
        engine.check()


class NoChoices(BaseHTTPRequestHandler):
    def do_GET(self):
        self._reply({"object": "list", "data": [{"id": "m", "object": "model"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(
            {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
        )

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_reply_without_choices_is_one_line(tmp_path):
    # A broken server, not a model: the one thing a real server here will not do on request.
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoChoices)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = Endpoint("m", f"http://127.0.0.1:{server.server_port}/v1")
        engine = ServedEngine(endpoint, ServedParams(cache_dir=str(tmp_path))).check()
        with pytest.raises(SuperalignError, match="reply has no choices"):
            engine.generate(CHATS[:1], SamplingParams(max_new_tokens=4))
    finally:
        server.shutdown()


def test_k_samples_and_the_request_cache(served_judge, tmp_path):
    endpoint = parse_endpoint(served_judge.spec, "x")
    params = ServedParams(cache_dir=str(tmp_path / "cache"), concurrency=2)
    sampling = SamplingParams(num_samples=2, max_new_tokens=12, temperature=0.8, seed=3)
    engine = ServedEngine(endpoint, params).check()
    before = served_judge.requests_served()
    out = engine.generate(CHATS, sampling)
    assert out.texts == [["Score: 4", "Score: 4"]] * 3
    assert engine.model_id == str(served_judge.model_dir)  # what the server says it ran
    # transformers serve ignores n: one request per sample
    assert engine.requests_sent == 6 == served_judge.requests_served() - before
    again = ServedEngine(endpoint, params)
    assert again.generate(CHATS, sampling).texts == out.texts
    assert again.requests_sent == 0 and served_judge.requests_served() - before == 6
    other = SamplingParams(num_samples=2, max_new_tokens=12, temperature=0.8, seed=4)
    again.generate(CHATS[:1], other)  # another seed is another request
    assert again.requests_sent == 2


def test_served_judge_verdicts_record_the_served_model(served_judge, tmp_path):
    params = CritiqueParams(kind="llm_judge", judge_model=served_judge.spec)
    served = ServedParams(cache_dir=str(tmp_path))
    critic = make_critic(
        params, load_suite("open"), "Be helpful.", tmp_path, EngineParams(), None, served
    )
    (verdict,) = critic.judge([{"prompt": "What is tea?", "response": "A drink."}])
    assert verdict["score"] == 0.75 and verdict["source"] == served_judge.spec
    assert verdict["served_model"] == str(served_judge.model_dir)
    assert verdict["confidence"] is None  # transformers serve gives no log-probs: unknown
    for kind, mode in (("yes_no_judge", "parse"), ("llm_judge", "forced")):
        with pytest.raises(SuperalignError, match="served judge"):
            make_critic(
                CritiqueParams(kind=kind, score_mode=mode, judge_model=served_judge.spec),
                load_suite("open"),
                "",
                tmp_path,
                EngineParams(),
                None,
                served,
            )


def test_a_server_killed_halfway_then_a_rerun_sends_only_the_rest(tiny_model_dir, tmp_path):
    server = ServedModel(tiny_model_dir, tmp_path).start()
    endpoint = parse_endpoint(server.spec, "x")
    params = ServedParams(
        cache_dir=str(tmp_path / "cache"), concurrency=1, max_retries=1, timeout_s=10
    )
    cache = RequestCache(params.cache_dir)
    chats = [[{"role": "user", "content": f"Tell me about {i}."}] for i in range(40)]
    sampling = SamplingParams(max_new_tokens=24)

    def kill_when_some_are_done():
        while len(cache) < 3:
            time.sleep(0.02)
        server.stop()

    killer = threading.Thread(target=kill_when_some_are_done)
    killer.start()
    try:
        with pytest.raises(SuperalignError, match="after 1 retries") as err:
            ServedEngine(endpoint, params).generate(chats, sampling)
        killer.join()
        assert "\n" not in str(err.value)
        done = len(cache)
        assert 3 <= done < len(chats)
        server.start()
        rerun = ServedEngine(endpoint, params)
        texts = rerun.generate(chats, sampling).texts
        assert rerun.requests_sent == len(chats) - done  # the finished ones came from the cache
        assert len(texts) == len(chats) and len(cache) == len(chats)
    finally:
        server.stop()


@pytest.mark.slow
def test_a_round_with_served_attacker_and_judge(tiny_model_dir, served_judge, tmp_path):
    """The llm attacker and the llm judge behind two real servers; the learner stays local."""
    attacker = ServedModel(tiny_model_dir, tmp_path).start()
    try:
        ws = make_workspace(
            tmp_path / "ws",
            tiny_model_dir,
            {
                "suite": {"name": "open"},
                "served": {"cache_dir": str(tmp_path / "cache")},
                "attack": {
                    "kind": "llm",
                    "attacker_model": attacker.spec,
                    "candidates": 8,
                    "max_new_tokens": 12,
                },
                "critique": {"kind": "llm_judge", "judge_model": served_judge.spec},
                "build_prefs": {"require_acceptable": False, "min_margin": 0.0},
            },
            rounds=1,
        )
        dvc(ws, "repro")
    finally:
        attacker.stop()
    rdir = ws / "data/rounds/r1"
    queries = [json.loads(line) for line in (rdir / "queries.jsonl").read_text().splitlines()]
    assert queries and all(q["attacker_model"] == str(tiny_model_dir) for q in queries)
    verdicts = [json.loads(line) for line in (rdir / "verdicts.jsonl").read_text().splitlines()]
    assert verdicts and all(v["score"] == 0.75 for v in verdicts)
    assert all(v["served_model"] == str(served_judge.model_dir) for v in verdicts)
    assert (ws / "models/r1/adapter_model.safetensors").is_file()
    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "attributes.run_name = 'critique@r1'",
    )
    assert runs and runs[0].data.params["critique.judge_model"] == served_judge.spec
    assert runs[0].data.params["served.api_key_env"] == "None"  # the variable's name, never a key


def test_score_confidence_from_the_servers_log_probs(tmp_path):
    """vLLM's reply shape (choices[].logprobs.content with top_logprobs): the judge's score
    token probability is read from it, renormalised over the score tokens."""
    from openai.types.chat import ChatCompletion

    from stages.served import _choice

    def token(text, top):
        return {
            "token": text,
            "logprob": top.get(text, -9.0),
            "bytes": None,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
        }

    reply = ChatCompletion.model_validate(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "judge",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Fine. Score: 4"},
                    "logprobs": {
                        "content": [
                            token("Fine.", {"Fine.": -0.1}),
                            token(" Score", {" Score": -0.1}),
                            token(":", {":": 0.0}),
                            token(" ", {" ": 0.0}),
                            token("4", {"4": -0.2231, "5": -1.6094, "x": -3.0}),
                        ]
                    },
                }
            ],
        }
    )
    engine = ServedEngine(
        Endpoint("judge", "http://127.0.0.1:9/v1"), ServedParams(cache_dir=str(tmp_path))
    )
    chat = [{"role": "user", "content": "Judge this."}]
    engine._tokens[json.dumps(chat, sort_keys=True)] = [_choice(reply.choices[0])["tokens"]]
    (probs,) = engine.continuation_probs([(chat, "Fine. Score: ")], ("1", "2", "3", "4", "5"))
    assert probs[3] == pytest.approx(0.8 / 1.0, abs=1e-3) and probs[4] == pytest.approx(
        0.2, abs=1e-3
    )
    assert engine.continuation_probs([(chat, "Fine. Sco")], ("4",)) == [None]  # mid-token
    assert engine.continuation_probs(
        [([{"role": "user", "content": "other"}], "Fine. Score: ")], ("4",)
    ) == [None]
