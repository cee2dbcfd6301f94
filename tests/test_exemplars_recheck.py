"""`ste-mcp exemplars recheck`: exemplars stored under older rules are held to today's checks, on a
real LanceDB store on disk, through the CLI (no model is asked)."""

from __future__ import annotations

from pathlib import Path

from ste_mcp.cli import main
from ste_mcp.memory.exemplars import exemplar_id
from tests.test_exemplars_transfer import exemplar, listed, seeded, spec  # noqa: F401


def stale(data_dir: Path):
    """The seeded store plus what an older version let through."""
    store = seeded(data_dir)
    talks = exemplar("get_weather", "Get the weather in Rome using the [REDACTED] tool", {"city": "Rome"})
    store.add(
        [
            talks,
            exemplar(
                "get_weather",
                "Rome's weather via the [REDACTED] tool, please",
                {"city": "Rome"},
                id=exemplar_id(talks.id, "paraphrase"),
                variant_of=talks.id,
            ),
            exemplar("convert_currency", "How many euros are 75 dollars?", {"amount": 120, "to": "EUR"}),
            exemplar(  # a paraphrase that lost the amount its original states and the call sends
                "convert_currency",
                "How many euros would I get for my dollars?",
                {"amount": 120, "to": "EUR"},
                variant_of=exemplar_id("convert_currency", "How many euros do I get for 120 US dollars?"),
            ),
            exemplar("get_weather", "Run get_weather for Oslo", {"city": "Oslo"}, status="candidate"),
            exemplar("convert_currency", "My savings in euros, please", {"amount": 500, "to": "EUR"}),
            exemplar("retired_tool", "Anything at all", {}),
        ]
    )
    return store


def recheck(data_dir: Path, spec: Path, *extra: str) -> int:  # noqa: F811
    return main(["exemplars", "recheck", "--data-dir", str(data_dir), "--spec", str(spec), *extra])


def statuses(data_dir: Path, capsys) -> dict[str, tuple[str, str]]:
    return {row["query"]: (row["status"], row["status_reason"]) for row in listed(data_dir, capsys)}


def test_recheck_rejects_what_todays_checks_refuse_and_nothing_else(tmp_path, spec, capsys):  # noqa: F811
    data_dir = tmp_path / "data"
    stale(data_dir)
    before = statuses(data_dir, capsys)

    assert recheck(data_dir, spec, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "talks about the tool" in out and "ignores 75" in out and "names the tool" in out
    assert "drops amount = 120, which the original request states" in out
    assert "stated_numbers: the call sends amount = 500, which the request does not give" in out
    assert out.strip().endswith(
        "10 exemplar(s) checked, 5 would be rejected; 1 of tools no longer served left as they are"
    )
    assert statuses(data_dir, capsys) == before  # a dry run changes nothing

    assert recheck(data_dir, spec) == 0
    assert "5 rejected (6 rows with their paraphrases)" in capsys.readouterr().out
    after = statuses(data_dir, capsys)
    for query in (
        "Get the weather in Rome using the [REDACTED] tool",
        "Rome's weather via the [REDACTED] tool, please",  # with its original
        "How many euros are 75 dollars?",
        "Run get_weather for Oslo",
        "How many euros would I get for my dollars?",  # its original stays
        "My savings in euros, please",  # an amount nobody gave
    ):
        status, reason = after[query]
        assert status == "rejected" and reason.startswith("recheck: "), (query, reason)
    unchanged = {q: v for q, v in before.items() if q in after and after[q] == v}
    assert set(unchanged) == {
        "Will it rain in Paris tomorrow?",
        "Is rain expected in Paris tomorrow?",
        "How many euros do I get for 120 US dollars?",
        "What are 50 pounds in yen?",
        "Weather in Atlantis please",  # rejected before, stays so with its own reason
        "Anything at all",  # a tool the spec no longer serves: not judged here
    }

    assert recheck(data_dir, spec) == 0  # nothing left to do
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            "4 exemplar(s) checked, 0 rejected (0 rows with their paraphrases); 1 of tools no longer served left as they are"
        )
    )


def test_an_operator_undoes_a_recheck_by_approving(tmp_path, spec, capsys):  # noqa: F811
    data_dir = tmp_path / "data"
    store = stale(data_dir)
    assert recheck(data_dir, spec) == 0
    (talks,) = [ex for ex in store.find("get_weather", "rejected", originals_only=True) if "Rome" in ex.query]
    assert main(["exemplars", "approve", talks.id, "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert statuses(data_dir, capsys)["Rome's weather via the [REDACTED] tool, please"][0] == "approved"


def test_recheck_of_an_empty_data_dir_creates_nothing(tmp_path, spec, capsys):  # noqa: F811
    data_dir = tmp_path / "data"
    assert recheck(data_dir, spec) == 0
    assert "nothing to recheck" in capsys.readouterr().out
    assert not (data_dir / "lancedb").exists()


def test_the_server_says_at_start_that_stored_exemplars_fail_todays_checks(tmp_path, spec, caplog):  # noqa: F811
    """`serve`'s memory loop names the stale exemplars and the command, and changes nothing itself."""
    import logging

    from ste_mcp.app import App
    from ste_mcp.config import load_settings
    from ste_mcp.memory.extension import MemoryExtension
    from ste_mcp.upstream.specs import load_toolset

    data_dir = tmp_path / "data"
    store = stale(data_dir)
    settings = load_settings(data_dir=str(data_dir), specs=[str(spec)])
    app = App(settings, toolset=load_toolset(settings))
    with caplog.at_level(logging.WARNING, logger="ste_mcp.memory.extension"):
        assert MemoryExtension(app).warn_stale_exemplars() == 5
    assert "5 stored exemplar(s) fail today's checks" in caplog.text
    assert "`ste-mcp exemplars recheck` rejects them" in caplog.text
    assert len(store.find(status="approved")) == 9  # nothing rejected by the hint
    assert recheck(data_dir, spec) == 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ste_mcp.memory.extension"):
        assert MemoryExtension(App(settings, toolset=load_toolset(settings))).warn_stale_exemplars() == 0
    assert "fail today's checks" not in caplog.text
