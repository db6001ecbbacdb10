"""The judge-reply cache, JSON asks with re-asking, and consensus over k samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support.fake_judges import FakeJudgeServer
from vidspan.judge import (
    Frame,
    JudgeCache,
    JudgeCacheError,
    JudgeReply,
    JudgeRequest,
    JudgeSettings,
    JudgeUnscoredError,
    OpenAIJudge,
    cache_key,
    default_cache_path,
    parse_json_reply,
)


@pytest.fixture
def server():
    with FakeJudgeServer(lambda info: '{"ok": true}') as fake:
        yield fake


def _judge(server: FakeJudgeServer, cache, model: str = "gpt-4.1", **options) -> OpenAIJudge:
    return OpenAIJudge(
        model, base_url=server.openai_base_url, api_key="k", backoff_seconds=0.01, cache=cache, **options
    )


def _events(value):
    if not isinstance(value, dict) or not isinstance(value.get("events"), list):
        raise ValueError("expected {'events': [...]}")
    return value["events"]


# -- the cache -------------------------------------------------------------------------------------------


def test_an_identical_request_is_asked_once_and_costs_once(server, tmp_path):
    judge = _judge(server, tmp_path / "c.sqlite")
    request = JudgeRequest("json please", frames=(Frame(0.5, b"jpeg"),))
    first = judge.complete(request)
    second = judge.complete(request)
    assert server.count() == 1
    assert not first.cached and second.cached
    assert second.text == first.text and second.cost_usd == first.cost_usd
    assert (judge.usage.calls, judge.usage.cached_calls) == (1, 1)
    assert judge.usage.cost_usd == pytest.approx(first.cost_usd)
    assert judge.usage.prompt_tokens == first.prompt_tokens


def test_keys_change_with_every_input_that_changes_the_answer():
    settings = JudgeSettings(backend="openai", model="gpt-4.1", base_url="https://api.openai.com/v1")
    request = JudgeRequest("p", system="s", frames=(Frame(1.0, b"a"),))
    key = cache_key(settings, request)
    assert key == cache_key(settings, JudgeRequest("p", system="s", frames=(Frame(1.0, b"a"),)))
    variants = [
        (settings, JudgeRequest("p", system="s", frames=(Frame(1.0, b"b"),))),
        (settings, JudgeRequest("p", system="s", frames=(Frame(2.0, b"a"),))),
        (settings, JudgeRequest("p", system="s", frames=(Frame(1.0, b"a"),), sample=1)),
        (settings, JudgeRequest("p", system="s", frames=(Frame(1.0, b"a"),), retry=1)),
        (settings, JudgeRequest("p", system="s", frames=(Frame(1.0, b"a"),), json_output=False)),
        (settings, JudgeRequest("p", system="t", frames=(Frame(1.0, b"a"),))),
        (settings, JudgeRequest("q", system="s", frames=(Frame(1.0, b"a"),))),
        (JudgeSettings(backend="openai", model="gpt-4.1-mini", base_url=settings.base_url), request),
        (
            JudgeSettings(backend="openai", model="gpt-4.1", temperature=0.5, base_url=settings.base_url),
            request,
        ),
        (JudgeSettings(backend="openai", model="gpt-4.1", base_url="http://127.0.0.1:8000/v1"), request),
        (JudgeSettings(backend="gemini", model="gpt-4.1", base_url=settings.base_url), request),
    ]
    keys = {cache_key(s, r) for s, r in variants}
    assert len(keys) == len(variants) and key not in keys


def test_retry_zero_keeps_the_original_fingerprint():
    request = JudgeRequest("p")
    assert request.fingerprint() == JudgeRequest("p", retry=0).fingerprint()
    assert request.fingerprint() != JudgeRequest("p", retry=1).fingerprint()


def test_a_fresh_judge_object_reads_the_same_sqlite_file(server, tmp_path):
    path = tmp_path / "c.sqlite"
    _judge(server, path).complete(JudgeRequest("json"))
    fresh = _judge(server, JudgeCache(path))
    reply = fresh.complete(JudgeRequest("json"))
    assert reply.cached and server.count() == 1
    assert (fresh.usage.calls, fresh.usage.cached_calls, fresh.usage.cost_usd) == (0, 1, 0.0)
    other_model = _judge(server, path, model="gpt-4o")
    assert not other_model.complete(JudgeRequest("json")).cached
    assert server.count() == 2


def test_a_new_process_answers_from_the_cache_without_the_server(server, tmp_path):
    path = tmp_path / "c.sqlite"
    base_url = server.openai_base_url
    first = _judge(server, path).complete(JudgeRequest("json", sample=2))
    server.close()  # from now on a request would fail with "connection refused"
    code = (
        "import json, sys\n"
        "from vidspan.judge import OpenAIJudge, JudgeRequest\n"
        "judge = OpenAIJudge('gpt-4.1', base_url=sys.argv[1], api_key='k', cache=sys.argv[2])\n"
        "reply = judge.complete(JudgeRequest('json', sample=2))\n"
        "out = {'text': reply.text, 'cached': reply.cached, **judge.usage.to_dict()}\n"
        "sys.stdout.write(json.dumps(out))\n"
    )
    env = {**os.environ, "VIDSPAN_LOAD_PLUGINS": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code, base_url, str(path)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["text"] == first.text and out["cached"] is True
    assert out["calls"] == 0 and out["cached_calls"] == 1


def test_the_default_cache_lives_in_the_user_path(server, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSPAN_USER_PATH", str(tmp_path / "user"))
    assert default_cache_path() == tmp_path / "user" / "judge-cache.sqlite"
    judge = _judge(server, None)
    judge.complete(JudgeRequest("json"))
    assert judge.cache is not None and judge.cache.path == tmp_path / "user" / "judge-cache.sqlite"
    assert (tmp_path / "user" / "judge-cache.sqlite").is_file()
    assert _judge(server, False).cache is None
    monkeypatch.delenv("VIDSPAN_USER_PATH")
    assert default_cache_path() == Path("~/.cache/vidspan/judge-cache.sqlite").expanduser()


def test_a_corrupt_cache_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database, just some text that is long enough " * 20)
    with pytest.raises(JudgeCacheError, match=r"c\.sqlite is not a usable SQLite database .*Delete it"):
        JudgeCache(path)


def test_an_unwritable_cache_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(
        JudgeCacheError, match=r"Cannot write the judge cache .*VIDSPAN_USER_PATH.*cache=False"
    ):
        JudgeCache(blocker / "c.sqlite")


def test_a_cache_from_a_newer_vidspan_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    JudgeCache(path).close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(JudgeCacheError, match="written by a newer vidspan"):
        JudgeCache(path)


def test_the_cache_is_thread_safe_and_keeps_the_first_reply(tmp_path):
    cache = JudgeCache(tmp_path / "c.sqlite")
    failures = []

    def work(worker: int) -> None:
        for i in range(40):
            key = f"k{i}"
            cache.put(key, JudgeReply(text=f"{worker}", prompt_tokens=i, cost_usd=0.5))
            hit = cache.get(key)
            if hit is None or not hit.cached or hit.prompt_tokens != i:
                failures.append((worker, i, hit))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(cache) == 40
    assert cache.get("missing") is None
    cache.close()


# -- ask_json --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('```json\n{"events": ["a", "b"]}\n```', {"events": ["a", "b"]}),
        ("```python\n{'events': ['a']}\n```", {"events": ["a"]}),
        ("{'events': ['a', 'b'], 'done': True}", {"events": ["a", "b"], "done": True}),
        ('Here is the JSON:\n{"events": []}', {"events": []}),
        ('{"events": ["x"]}\nI hope this helps.', {"events": ["x"]}),
        ('```json\n[{"label": "entailment"}]', [{"label": "entailment"}]),
        ("  [1, 2]  ", [1, 2]),
    ],
)
def test_parse_json_reply_tolerates_fences_prose_and_python_literals(text, value):
    assert parse_json_reply(text) == value


@pytest.mark.parametrize("text", ["", "   ", "I cannot judge this video.", "{'events': [unquoted]}"])
def test_parse_json_reply_rejects_what_is_not_json(text):
    with pytest.raises(ValueError):
        parse_json_reply(text)


def test_ask_json_reads_a_python_dict_string(tmp_path):
    with FakeJudgeServer(["{'events': ['a man opens a door']}"]) as fake:
        judge = _judge(fake, tmp_path / "c.sqlite")
        assert judge.ask_json(JudgeRequest("json"), _events) == ["a man opens a door"]


def test_an_invalid_reply_is_re_asked_with_a_new_key_and_seed(tmp_path):
    with FakeJudgeServer(
        ["Sure! The events are: a dog runs.", '```json\n{"events": ["a dog runs"]}\n```']
    ) as fake:
        judge = _judge(fake, tmp_path / "c.sqlite")
        assert judge.ask_json(JudgeRequest("json"), _events) == ["a dog runs"]
        assert fake.count() == 2
        assert [r.body["seed"] for r in fake.requests] == [0, 1000]
        again = _judge(fake, tmp_path / "c.sqlite")  # a re-run replays both attempts from the cache
        assert again.ask_json(JudgeRequest("json"), _events) == ["a dog runs"]
        assert fake.count() == 2 and again.usage.cached_calls == 2


def test_always_invalid_replies_leave_the_sample_unscored_never_zero(tmp_path):
    replies = ["no json here", '{"wrong": 1}', "{'events': 'not a list'}"]
    with FakeJudgeServer(replies) as fake:
        judge = _judge(fake, tmp_path / "c.sqlite")
        with pytest.raises(
            JudgeUnscoredError, match=r"no usable reply in 3 attempts; the last: expected"
        ) as info:
            judge.ask_json(JudgeRequest("json"), _events)
        assert info.value.replies == tuple(replies)
        assert fake.count() == 3 and judge.usage.unscored == 1 and judge.usage.calls == 3


def test_more_attempts_on_a_re_run_ask_beyond_the_cached_bad_replies(tmp_path):
    with FakeJudgeServer(["garbage", "garbage", '{"events": ["ok"]}']) as fake:
        judge = _judge(fake, tmp_path / "c.sqlite")
        with pytest.raises(JudgeUnscoredError):
            judge.ask_json(JudgeRequest("json"), _events, attempts=2)
        rerun = _judge(fake, tmp_path / "c.sqlite")
        assert rerun.ask_json(JudgeRequest("json"), _events, attempts=3) == ["ok"]
        assert fake.count() == 3 and (rerun.usage.cached_calls, rerun.usage.calls) == (2, 1)


def test_consensus_asks_k_distinct_samples(tmp_path):
    def respond(info):
        return json.dumps({"events": [f"sample {info.body['seed']}"]})

    with FakeJudgeServer(respond) as fake:
        judge = _judge(fake, tmp_path / "c.sqlite")
        answers = judge.ask_json_k(JudgeRequest("json"), _events, k=3)
        assert answers == [["sample 0"], ["sample 1"], ["sample 2"]]
        assert fake.count() == 3
        assert judge.ask_json_k(JudgeRequest("json"), _events, k=3) == answers
        assert fake.count() == 3 and judge.usage.cached_calls == 3


def test_consensus_keeps_an_unscored_sample_in_its_place(tmp_path):
    def respond(info):
        return "not json" if info.body["seed"] % 1000 == 1 else '{"events": []}'

    with FakeJudgeServer(respond) as fake:
        judge = _judge(fake, False)
        answers = judge.ask_json_k(JudgeRequest("json"), _events, k=3, attempts=2)
        assert answers[0] == [] and answers[2] == []
        assert isinstance(answers[1], JudgeUnscoredError) and answers[1].replies == ("not json", "not json")
        assert judge.usage.unscored == 1 and fake.count() == 4


def test_ask_json_rejects_bad_arguments(server):
    judge = _judge(server, False)
    with pytest.raises(ValueError, match="Invalid attempts"):
        judge.ask_json(JudgeRequest("json"), dict, attempts=0)
    with pytest.raises(ValueError, match="Invalid k"):
        judge.ask_json_k(JudgeRequest("json"), dict, k=0)
    with pytest.raises(TypeError, match="Invalid request"):
        judge.complete("json")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Invalid cache"):
        _judge(server, 3)
