"""`ste-mcp eval` end to end with the real packaged model (SmolLM2-135M on managed vLLM)."""

from __future__ import annotations

import json

import pytest

from ste_mcp.cli import main
from ste_mcp.evaluate.bench import load_bench
from ste_mcp.evaluate.run import bench_schemas, read_predictions
from ste_mcp.evaluate.score import score
from ste_mcp.memory.db import open_db
from ste_mcp.memory.exemplars import Exemplar, ExemplarStore

pytestmark = pytest.mark.model

TOOLS = ["add_date", "get_today_date", "Numbers__Get_math_fact"]


def _eval(vllm_server, ste50_dir, data_dir, out, *extra: str) -> int:
    return main(
        [
            "eval",
            "--bench", str(ste50_dir),
            "--tools", *TOOLS,
            "--limit", "6",
            "--out", str(out),
            "--llm-url", vllm_server.base_url,
            "--model", vllm_server.model,
            "--data-dir", str(data_dir),
            *extra,
        ]
    )  # fmt: skip


def _check_run(out, ste50_dir) -> dict:
    bench = load_bench(ste50_dir)
    items = bench.select(TOOLS, limit=6)
    predictions = read_predictions(out / "predictions.jsonl")
    assert [p["id"] for p in predictions] == [it.id for it in items]
    assert all("error" not in p for p in predictions)
    assert any(p.get("output", "").strip() for p in predictions)  # the model really answered
    assert all("Observation:" not in p.get("output", "") for p in predictions)  # stopped there
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 6 and summary["model"] == "smollm2-135m-instruct" and summary["temperature"] == 0.0
    assert set(summary["per_tool"]) == set(TOOLS)
    for key in ("wellformed", "api_match", "correct"):
        assert 0.0 <= summary[key] <= 100.0
    truth = [it.model_dump() for it in items]
    rescored = score(predictions, truth, bench.tool_names, bench_schemas(bench)).model_dump(exclude={"items"})
    assert rescored == {k: summary[k] for k in rescored}
    return summary


def test_eval_base_and_retrieval_on_the_real_model(vllm_server, ste50_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert _eval(vllm_server, ste50_dir, tmp_path / "data", runs / "base") == 0
    base = _check_run(runs / "base", ste50_dir)
    assert base["setting"] == "base"
    assert "overall" in capsys.readouterr().out

    # retrieval reads approved exemplars from the data dir's LanceDB (made-up queries, not test items)
    store = ExemplarStore(open_db(tmp_path / "data" / "lancedb"))
    store.add(
        [
            Exemplar(tool="add_date", query="Which date is 30 days after 2021-03-01?",
                     arguments={"date": "2021-03-01", "days": 30}, status="approved"),
            Exemplar(tool="get_today_date", query="What is the date today?", arguments={}, status="approved"),
        ]
    )  # fmt: skip
    assert _eval(vllm_server, ste50_dir, tmp_path / "data", runs / "retrieval", "--setting", "retrieval") == 0
    assert _check_run(runs / "retrieval", ste50_dir)["setting"] == "retrieval"
    assert (runs / "settings.png").read_bytes()[:4] == b"\x89PNG"  # two runs side by side: compared
