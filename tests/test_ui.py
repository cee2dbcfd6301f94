"""The review dashboard over HTTP (Starlette's TestClient against the real app, a real LanceDB on disk):
pages, actions through the CLI's store functions, token / Host / Origin / CSRF / read-only refusals,
and escaping of upstream-derived text (HTML payloads and the prompt-injection corpus)."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from ste_mcp.config import load_settings
from ste_mcp.explorer.status import pause_marker
from ste_mcp.finetune.registry import PEFT_FILES, AdapterRegistry, Manifest
from ste_mcp.memory.db import open_db
from ste_mcp.memory.descriptions import PENDING, DescriptionStore, text_hash
from ste_mcp.memory.embeddings import DIM
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore, Provenance
from ste_mcp.memory.gate import EvaluatorScore
from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.ui.cli_ui import build_app
from tests.fixtures.common import REPO

TOKEN = "ui-test-token-8c2f7e1a"
ORIGIN = "http://127.0.0.1:8766"
# HTML payloads: each would run script (set window.__xss or open a dialog) if rendered unescaped
XSS = [
    "<script>window.__xss=1;alert('xss-script')</script>",
    '"><img src=x onerror="window.__xss=2;alert(\'xss-img\')">',
    '<svg onload="window.__xss=3"></svg>',
    '</pre></td><iframe srcdoc="<script>parent.__xss=4</script>"></iframe>',
    '{{7*7}} <a href="javascript:window.__xss=5">click</a>',
]
XSS_TEXT = " ".join(XSS)
CORPUS = [
    json.loads(line)["text"]
    for line in (REPO / "tests/data/injection/payloads.jsonl").read_text().splitlines()
]


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def seed_data_dir(
    data_dir: Path, *, tool: str = "get_weather", query: str = "What is the weather in Lima?"
) -> dict[str, Any]:
    """A data dir holding what a learning run leaves: trials (one carrying HTML payloads), a candidate
    exemplar with a paraphrase, an XSS candidate, and the tool's original description (v1)."""
    db = open_db(data_dir / "lancedb")
    trials = TrialStore(db)
    good = TrialRecord(
        tool=tool,
        episode=0,
        slot=0,
        query=query,
        turns=[
            Turn(
                raw='{"city": "Lima"}',
                kind="call",
                tool=tool,
                arguments={"city": "Lima", "days": 1},
                observation='{"city": "Lima", "forecast": "sunny"}',
            ),
            Turn(raw="Final Answer: sunny", kind="final"),
        ],
        final_answer="It is sunny in Lima.",
        reflection="yes",
        verdict={"accepted": True, "reason": "the call answers the request"},
    )
    evil = TrialRecord(
        tool=tool,
        episode=0,
        slot=1,
        query=f"weather {XSS[0]}",
        turns=[
            Turn(
                raw=XSS[1],
                kind="call",
                tool=tool,
                arguments={"city": XSS[2]},
                thought=XSS[4],
                observation=XSS_TEXT + "\n" + "\n".join(CORPUS),
            ),
            Turn(raw=XSS[3], kind="final"),
        ],
        final_answer=XSS_TEXT,
        reflection="no",
        reflection_raw=XSS[1],
        verdict={"accepted": False, "reason": XSS[1]},
    )
    failed = TrialRecord(tool="get_item", episode=0, slot=0, query="Fetch item 7", reflection="no")
    trials.record_many([good, evil, failed])
    exemplars = ExemplarStore(db)
    original = Exemplar(
        tool=tool,
        query=query,
        arguments={"city": "Lima", "days": 1},
        observation='{"city": "Lima", "forecast": "sunny"}',
        final_answer="It is sunny in Lima.",
        provenance=Provenance(trial_ids=[good.id], verdict={"accepted": True, "reason": "fine"}),
    )
    [original] = exemplars.add([original], vectors=unit_vectors(1, 1))
    paraphrase = Exemplar(
        tool=tool,
        query="How's the weather in Lima today?",
        arguments=original.arguments,
        variant_of=original.id,
    )
    xss = Exemplar(
        tool=tool,
        query=f"Weather {XSS[1]}",
        arguments={"city": XSS[0]},
        final_answer=XSS[2],
        provenance=Provenance(trial_ids=[evil.id], verdict={"reason": XSS[3]}),
    )
    [paraphrase, xss] = exemplars.add([paraphrase, xss], vectors=unit_vectors(2, 2))
    return {"trials": [good, evil, failed], "original": original, "paraphrase": paraphrase, "xss": xss}


@pytest.fixture
def seeded(data_dir: Path) -> dict[str, Any]:
    return seed_data_dir(data_dir)


def client_for(data_dir: Path, monkeypatch, *, token: str | None = None, **ui: Any) -> TestClient:
    if token:
        monkeypatch.setenv("STE_MCP_TOKEN", token)
    else:
        monkeypatch.delenv("STE_MCP_TOKEN", raising=False)
    settings = load_settings(data_dir=str(data_dir), ui=ui)
    return TestClient(build_app(settings), base_url=ORIGIN, follow_redirects=False)


@pytest.fixture
def client(data_dir, seeded, monkeypatch) -> TestClient:
    return client_for(data_dir, monkeypatch)


def csrf_of(client: TestClient, page: str = "/ui/tools") -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get(page).text)
    assert match, f"no CSRF field on {page}"
    return match.group(1)


def post(client: TestClient, path: str, data: dict[str, Any], **headers: str):
    return client.post(path, data={"csrf": csrf_of(client), **data}, headers={"Origin": ORIGIN, **headers})


def assert_escaped(html: str) -> None:
    """No payload survives as markup: every one appears only as escaped text."""
    for payload in XSS:
        assert payload not in html
    for needle in ("<script>window", "<img src=x", "<svg onload", "<iframe", 'href="javascript:'):
        assert needle not in html
    assert "&lt;script&gt;window.__xss=1" in html


# ---- pages -------------------------------------------------------------------------------------
def test_every_page_renders_the_seeded_data(client, seeded):
    tools = client.get("/ui/tools")
    assert tools.status_code == 200
    assert "get_weather" in tools.text and "get_item" in tools.text
    assert "not paused" in tools.text
    trials = client.get("/ui/trials")
    assert trials.status_code == 200 and "What is the weather in Lima?" in trials.text
    exemplars = client.get("/ui/exemplars")
    assert "What is the weather in Lima?" in exemplars.text
    assert "How&#39;s the weather in Lima today?" in exemplars.text  # the paraphrase, grouped
    for page in ("/ui/descriptions", "/ui/adapters", "/ui/evals", "/ui/tools/explorer"):
        assert client.get(page).status_code == 200, page
    assert client.get("/").headers["location"] == "/ui/tools"


def test_trial_transcript_and_filters(client, seeded):
    good, evil, failed = seeded["trials"]
    page = client.get(f"/ui/trials/{good.id}")
    assert page.status_code == 200
    for text in (
        "What is the weather in Lima?",
        "forecast",
        "It is sunny in Lima.",
        "the call answers the request",
    ):
        assert text in page.text
    assert "accepted" in page.text
    rejected = client.get("/ui/trials", params={"outcome": "rejected"}).text
    assert evil.id in rejected and good.id not in rejected
    only_item = client.get("/ui/trials", params={"tool": "get_item"}).text
    assert failed.id in only_item and good.id not in only_item
    unjudged = client.get("/ui/trials", params={"outcome": "unjudged"}).text
    assert failed.id in unjudged and good.id not in unjudged
    assert client.get("/ui/trials/nope:0:0").status_code == 404


def test_upstream_text_is_escaped_everywhere(client, seeded, data_dir):
    evil = seeded["trials"][1]
    for path in (f"/ui/trials/{evil.id}", "/ui/trials", "/ui/exemplars"):
        response = client.get(path)
        assert response.status_code == 200
        assert_escaped(response.text)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    transcript = client.get(f"/ui/trials/{evil.id}").text
    stored = TrialStore(open_db(data_dir / "lancedb")).get(evil.id).turns[0].observation  # as redacted
    lines = stored.splitlines()[1:]
    assert len(lines) >= len(CORPUS)
    for payload in lines:  # the injection corpus comes back as text, intact but escaped
        escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        escaped = escaped.replace('"', "&#34;").replace("'", "&#39;")
        assert escaped in transcript, payload


# ---- actions -----------------------------------------------------------------------------------
def test_approve_and_reject_exemplars_with_their_paraphrases(client, seeded, data_dir):
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    original, paraphrase, xss = seeded["original"], seeded["paraphrase"], seeded["xss"]
    response = post(client, "/ui/exemplars/approve", {"one": original.id, "ids": [xss.id]})
    assert response.status_code == 303
    assert store.get(original.id).status == "approved" and store.get(paraphrase.id).status == "approved"
    assert store.get(xss.id).status == "candidate"  # the row's own button approves that row only
    message = client.get(response.headers["location"]).text
    assert "2 exemplar(s) (with paraphrases) now approved" in message
    assert post(client, "/ui/exemplars/reject", {"all_candidates": "1"}).status_code == 303
    assert store.get(xss.id).status == "rejected" and store.get(original.id).status == "approved"
    assert post(client, "/ui/exemplars/reject", {"ids": ["ex-unknown"]}).status_code == 400


def test_description_history_diff_rollback_and_approval(client, data_dir):
    store = DescriptionStore(open_db(data_dir / "lancedb"))
    base = text_hash("Weather.")
    store.record("get_weather", "Weather.", reason="original", base_hash=base)
    store.record(
        "get_weather", "Weather.\n\nExamples: <b>Lima</b>", reason="rendered 1 example", base_hash=base
    )
    store.record(
        "get_weather",
        "Weather.\n\nExamples: Lima, Quito",
        reason="rendered 2",
        base_hash=base,
        status=PENDING,
    )
    page = client.get("/ui/descriptions/get_weather")
    assert page.status_code == 200
    assert 'id="served-version">2<' in page.text and "Approve pending v3" in page.text
    assert "Examples: &lt;b&gt;Lima&lt;/b&gt;" in page.text  # the diff: served v2 -> pending v3
    assert "Examples: Lima, Quito" in page.text
    assert post(client, "/ui/descriptions/get_weather/approve", {"version": "3"}).status_code == 303
    assert store.served("get_weather").version == 3
    assert post(client, "/ui/descriptions/get_weather/rollback", {"version": "1"}).status_code == 303
    served = store.served("get_weather")
    assert served.version == 4 and served.text == "Weather." and served.reason == "rollback to v1"
    refused = post(client, "/ui/descriptions/get_weather/rollback", {"version": "9"})
    assert refused.status_code == 400 and "has no version 9" in refused.text
    assert client.get("/ui/descriptions/nope").status_code == 404


def test_description_history_shows_the_gate_measurement(client, data_dir):
    store = DescriptionStore(open_db(data_dir / "lancedb"))
    base = text_hash("Weather.")
    store.record("get_weather", "Weather.", reason="original", base_hash=base)
    measured = {
        "candidate": {"correct": 62.5, "api_match": 75.0, "wellformed": 100.0},
        "baseline": {"correct": 25.0, "api_match": 50.0, "wellformed": 100.0},
        "n": 8,
        "evaluator": "qwen",
    }
    store.record("get_weather", "Weather.\n\nUsage notes: …", reason="notes", base_hash=base, gate=measured)
    page = client.get("/ui/descriptions/get_weather").text
    assert "qwen: correct 62.5 vs 25.0 %, API match 75.0 vs 50.0 % on 8" in page
    strong = {"evaluator": "big", "candidate": {"correct": 50.0}, "baseline": {"correct": 75.0}}
    both = {**measured, "scores": [{k: measured[k] for k in ("evaluator", "candidate", "baseline")}, strong]}
    store.record("get_weather", "Weather.\n\nUsage notes: 2", reason="notes", base_hash=base, gate=both)
    page = client.get("/ui/descriptions/get_weather").text
    assert "qwen: correct 62.5 vs 25.0 %, API match 75.0 vs 50.0 %<br>big: correct 50.0 vs 75.0 %" in page
    noisy = EvaluatorScore(**strong, paired={"correct": [0, 2]}, worse_p=0.2)  # p 0.25: noise
    scored = {**measured, "scores": [EvaluatorScore(**both["scores"][0]).model_dump(), noisy.model_dump()]}
    store.record("get_weather", "Weather.\n\nUsage notes: 3", reason="notes", base_hash=base, gate=scored)
    page = client.get("/ui/descriptions/get_weather").text
    assert "qwen (better): correct 62.5 vs 25.0 %, API match 75.0 vs 50.0 %<br>big (noise): correct" in page


def register_adapter(
    registry: AdapterRegistry, adapter_id: str, correct: float, parent: str | None = None
) -> None:
    folder = registry.root.parent / f"build-{adapter_id}"
    folder.mkdir(parents=True)
    for name in PEFT_FILES:
        (folder / name).write_text("{}")
    registry.register(
        folder,
        Manifest(
            id=adapter_id,
            base_model="tiny/base",
            data_hash="d" + adapter_id,
            parent=parent,
            metrics={"eval": {"correct": correct, "api_match": 50.0}, "baseline": {"correct": 20.0}},
        ),
    )


def test_adapters_promote_rollback_and_export(client, data_dir):
    registry = AdapterRegistry(data_dir / "adapters")
    register_adapter(registry, "round-1", 30.0)
    register_adapter(registry, "round-2", 40.0, parent="round-1")
    page = client.get("/ui/adapters").text
    assert "round-1" in page and "correct 30.0 / 20.0" in page
    assert post(client, "/ui/adapters/promote", {"id": "round-1"}).status_code == 303
    assert post(client, "/ui/adapters/promote", {"id": "round-2"}).status_code == 303
    assert registry.current().id == "round-2"
    assert post(client, "/ui/adapters/rollback", {}).status_code == 303
    assert registry.current().id == "round-1"
    assert post(client, "/ui/adapters/promote", {"id": "nope"}).status_code == 409
    download = client.get("/ui/adapters/round-2/export")
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        names = tar.getnames()
    assert "round-2/adapter_config.json" in names and "round-2/ste-mcp-manifest.json" in names


def test_pause_and_resume_exploration(client, data_dir):
    settings = load_settings(data_dir=str(data_dir))
    assert post(client, "/ui/explorer/pause", {}).status_code == 303
    assert pause_marker(settings).exists()
    assert "Resume exploration" in client.get("/ui/tools").text
    assert post(client, "/ui/explorer/resume", {}).status_code == 303
    assert not pause_marker(settings).exists()


def test_tools_page_shows_the_live_explorer_of_another_process(client, data_dir):
    import os

    from ste_mcp.explorer.status import live_status_file

    live = {
        "running": True,
        "paused": False,
        "in_flight": [{"tool": "get_weather", "episode": 3, "slot": 1, "phase": "reflect <b>"}],
        "this_run": {"trials": 7, "successful_trials": 5, "episodes": 2, "errors": 0, "stopped": {}},
        "budget": {
            "calls": 11,
            "max_calls": 200,
            "tokens": 900,
            "max_tokens_total": None,
            "episodes_this_run": 2,
            "max_episodes_total": None,
        },
        "last_error": None,
        "skipped_tools": {},
        "pid": os.getpid(),  # alive: the page trusts the file only while its writer runs
    }
    live_status_file(load_settings(data_dir=str(data_dir))).write_text(json.dumps(live))
    panel = client.get("/ui/tools/explorer").text
    assert f"explorer running (pid {os.getpid()})" in panel
    assert "<td>get_weather</td><td>3</td><td>1</td><td>reflect &lt;b&gt;</td>" in panel
    assert "calls 11 / 200" in panel and "tokens 900 / ∞" in panel and "7 trials, 5 successful" in panel
    assert 'hx-trigger="every 3s"' in panel


def test_evals_show_summaries_and_charts_inside_the_eval_folder(client, data_dir):
    run = data_dir / "eval" / "run-a"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"correct": 41.5, "label": "<b>a</b>", "per_tool": {}}))
    (run / "curve.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 16)
    (data_dir / "secret.png").write_bytes(b"\x89PNG")
    page = client.get("/ui/evals").text
    assert "41.5" in page and "&lt;b&gt;a&lt;/b&gt;" in page and "run-a/curve.png" in page
    png = client.get("/ui/evals/file/run-a/curve.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert client.get("/ui/evals/file/../secret.png").status_code == 404
    assert client.get("/ui/evals/file/run-a/summary.json").status_code == 404


# ---- refusals ----------------------------------------------------------------------------------
def test_csrf_and_origin_refusals_change_nothing(client, seeded, data_dir):
    store = ExemplarStore(open_db(data_dir / "lancedb"))
    target = {"one": seeded["original"].id}
    no_token = client.post("/ui/exemplars/approve", data=target, headers={"Origin": ORIGIN})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    wrong = client.post(
        "/ui/exemplars/approve", data={**target, "csrf": "x" * 43}, headers={"Origin": ORIGIN}
    )
    assert wrong.status_code == 403
    foreign = post(client, "/ui/exemplars/approve", target, Origin="http://evil.example")
    assert foreign.status_code == 403
    other_port = post(client, "/ui/exemplars/approve", target, Origin="http://127.0.0.1:9999")
    assert other_port.status_code == 403 and "is not this dashboard" in other_port.text
    cross_site = post(client, "/ui/exemplars/approve", target, **{"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    assert client.get("/ui/tools", headers={"Host": "evil.example:8766"}).status_code == 421  # DNS rebinding
    assert store.get(seeded["original"].id).status == "candidate"


def test_read_only_mode_shows_but_refuses_changes(data_dir, seeded, monkeypatch):
    client = client_for(data_dir, monkeypatch, read_only=True)
    page = client.get("/ui/exemplars")
    assert page.status_code == 200 and "read-only" in page.text and "Approve selected" not in page.text
    refused = post(client, "/ui/exemplars/approve", {"one": seeded["original"].id})
    assert refused.status_code == 403 and "read-only" in refused.text
    assert post(client, "/ui/explorer/pause", {}).status_code == 403
    assert not pause_marker(load_settings(data_dir=str(data_dir))).exists()
    assert ExemplarStore(open_db(data_dir / "lancedb")).get(seeded["original"].id).status == "candidate"
    assert post(client, "/ui/logout", {}).status_code == 303  # logging out changes no data


def test_token_rules_match_mcp(data_dir, seeded, monkeypatch):
    client = client_for(data_dir, monkeypatch, token=TOKEN)
    login = client.get("/ui/tools")
    assert login.status_code == 303 and login.headers["location"] == "/ui/login"
    assert client.post("/ui/exemplars/approve", data={}).status_code == 401
    assert client.get("/ui/static/ui.css").status_code == 200  # assets need no token
    bearer = client.get("/ui/tools", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200 and "get_weather" in bearer.text
    assert client.get("/ui/tools", headers={"Authorization": "Bearer wrong-token-123456"}).status_code == 303

    form = client.get("/ui/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    bad = client.post(
        "/ui/login", data={"csrf": csrf, "token": "not-the-token-xyz"}, headers={"Origin": ORIGIN}
    )
    assert bad.status_code == 401 and "ste_mcp_ui" not in bad.headers.get("set-cookie", "")
    good = client.post("/ui/login", data={"csrf": csrf, "token": TOKEN}, headers={"Origin": ORIGIN})
    assert good.status_code == 303
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert TOKEN not in cookie  # a session id, not the token
    assert client.get("/ui/tools").status_code == 200  # the cookie jar now holds the session
    assert post(client, "/ui/logout", {}).status_code == 303
    assert client.get("/ui/tools").status_code == 303


def test_weak_token_and_wide_bind_fail_fast(data_dir, monkeypatch):
    from ste_mcp.config import ConfigError

    monkeypatch.setenv("STE_MCP_TOKEN", "short")
    with pytest.raises(ConfigError, match="too weak"):
        build_app(load_settings(data_dir=str(data_dir)))
    monkeypatch.delenv("STE_MCP_TOKEN")
    with pytest.raises(ConfigError, match="requires a bearer token"):
        build_app(load_settings(data_dir=str(data_dir), ui={"host": "0.0.0.0"}))


def test_serve_http_mounts_the_dashboard_with_the_mcp_token(data_dir, seeded, upstream_spec, monkeypatch):
    from ste_mcp.app import App
    from ste_mcp.server.transports import http_app
    from ste_mcp.upstream.specs import load_toolset

    monkeypatch.setenv("STE_MCP_TOKEN", TOKEN)
    settings = load_settings(data_dir=str(data_dir), specs=[str(upstream_spec)], server={"features": []})
    app = App(settings, toolset=load_toolset(settings))
    client = TestClient(http_app(app, host="127.0.0.1", port=8765), base_url="http://127.0.0.1:8765")
    assert client.get("/ui/tools", follow_redirects=False).headers["location"] == "/ui/login"
    page = client.get("/ui/tools", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and "get_weather" in page.text
    assert ">post_echo</a>" in page.text  # every tool the server shows has a row, learned or not
    assert client.get("/ui/tools", headers={"Origin": "http://evil.example"}).status_code == 403

    disabled = load_settings(
        data_dir=str(data_dir), specs=[str(upstream_spec)], server={"features": []}, ui={"enabled": False}
    )
    off = TestClient(http_app(App(disabled), host="127.0.0.1", port=8765), base_url="http://127.0.0.1:8765")
    assert off.get("/ui/tools", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_ste_mcp_ui_command_serves_the_data_dir(data_dir, seeded):
    """`ste-mcp ui` in its own process, next to the data dir another process writes."""
    import subprocess
    import time

    import httpx

    from tests.fixtures.common import STE_MCP, child_env, free_port

    port = free_port()
    proc = subprocess.Popen(
        [STE_MCP, "ui", "--port", str(port), "--read-only"],
        env=child_env(data_dir),
        cwd=str(REPO),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/ui/exemplars"
        deadline = time.monotonic() + 180  # generous: the suite may share a busy machine
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                page = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ste-mcp ui did not start"
                time.sleep(0.2)
        assert (
            page.status_code == 200
            and "What is the weather in Lima?" in page.text
            and "read-only" in page.text
        )
        assert seeded["xss"].id in page.text
        ExemplarStore(open_db(data_dir / "lancedb")).set_status([seeded["xss"].id], "rejected", "by the CLI")
        assert (
            seeded["xss"].id not in httpx.get(url, timeout=5).text
        )  # a write by another process, seen at once
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_configured_proxy_origin_may_post(data_dir, seeded, monkeypatch):
    monkeypatch.delenv("STE_MCP_TOKEN", raising=False)
    settings = load_settings(data_dir=str(data_dir), server={"allowed_origins": ["https://review.example"]})
    client = TestClient(build_app(settings), base_url=ORIGIN, follow_redirects=False)
    done = post(
        client, "/ui/exemplars/approve", {"one": seeded["original"].id}, Origin="https://review.example"
    )
    assert done.status_code == 303
    assert ExemplarStore(open_db(data_dir / "lancedb")).get(seeded["original"].id).status == "approved"
    assert (
        post(
            client, "/ui/exemplars/reject", {"all_candidates": "1"}, Origin="https://other.example"
        ).status_code
        == 403
    )
