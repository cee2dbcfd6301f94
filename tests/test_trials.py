"""TrialStore (real LanceDB on disk) and secret redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ste_mcp.memory.trials import TrialRecord, TrialStore, Turn
from ste_mcp.safety.redact import REDACTED, Redactor

SECRET = "s3cr3t-Planted-Value-42"


def make_trial(
    tool: str = "get_weather", episode: int = 0, slot: int = 0, *, ok: bool = True, **kw
) -> TrialRecord:
    turns = [
        Turn(
            raw='Action: get_weather\nAction Input: {"city": "Oslo"}',
            kind="call",
            tool=tool,
            arguments={"city": "Oslo"},
            observation='{"temp_c": 3}',
            is_error=not ok,
        ),
        Turn(raw="Final Answer: 3 degrees", kind="final"),
    ]
    fields = dict(
        query=f"weather in Oslo #{episode}.{slot}", turns=turns, final_answer="3 degrees", reflection="yes"
    )
    fields.update(kw)
    return TrialRecord(tool=tool, episode=episode, slot=slot, **fields)


@pytest.fixture
def store(data_dir: Path) -> TrialStore:
    return TrialStore.open(data_dir / "lancedb", secrets=[SECRET])


def test_record_is_idempotent_by_trial_id(store: TrialStore) -> None:
    assert store.record(make_trial()) is True
    assert store.record(make_trial(query="a different query, same slot")) is False
    assert store.count() == 1
    assert store.get("get_weather:0:0").query == "weather in Oslo #0.0"


def test_reopened_store_sees_everything(store: TrialStore, data_dir: Path) -> None:
    store.record(make_trial(slot=0))
    store.record(make_trial(slot=1, ok=False))
    again = TrialStore.open(data_dir / "lancedb")
    assert [t.id for t in again.trials()] == ["get_weather:0:0", "get_weather:0:1"]
    assert again.ltm("get_weather") == [("weather in Oslo #0.0", True), ("weather in Oslo #0.1", False)]


def test_long_term_memory_marks_a_judged_trial_by_its_verdict(store: TrialStore) -> None:
    """The explorer said "yes" to all three; the judge's verdict, once there, says which succeeded: one a
    check refused after the judge accepted it is a failure the next episode should not repeat."""
    for slot in range(4):
        store.record(make_trial(slot=slot))
    store.set_verdict("get_weather:0:0", {"accepted": True})
    store.set_verdict("get_weather:0:1", {"accepted": True, "refused": "request_numbers: the call ignores 3"})
    store.set_verdict("get_weather:0:2", {"accepted": False})
    assert [ok for _, ok in store.ltm("get_weather")] == [True, False, False, True]  # 0:3 not judged yet


def test_a_table_from_before_the_primary_key_gains_it_and_keeps_its_trials(data_dir: Path) -> None:
    """Trial tables written by older versions have a nullable, unkeyed id: opening one keys it (so
    concurrent writers cannot store an id twice) without losing a row."""
    import pyarrow as pa

    from ste_mcp.memory.db import PRIMARY_KEY, open_db
    from ste_mcp.memory.trials import SCHEMA, TABLE

    old = pa.schema([f.with_nullable(True).remove_metadata() for f in SCHEMA])
    first = TrialStore.open(data_dir / "fresh")._row(make_trial())  # a row as the store writes it
    db = open_db(data_dir / "lancedb")
    db.create_table(TABLE, data=pa.Table.from_pylist([first], schema=old))
    assert db.open_table(TABLE).schema.field("id").nullable

    store = TrialStore.open(data_dir / "lancedb")
    field = db.open_table(TABLE).schema.field("id")
    assert not field.nullable and any(k.decode().startswith(PRIMARY_KEY) for k in field.metadata)
    assert store.record(make_trial(slot=1)) and not store.record(make_trial())
    assert [t.id for t in store.trials()] == ["get_weather:0:0", "get_weather:0:1"]


def test_a_table_another_process_is_still_creating_is_waited_for(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas starting together on one new database: the table another one is creating is listed
    before it can be opened, and its create commit beats ours. Ours retries until the table opens
    (keyed, with the other's rows) instead of failing to start."""
    from ste_mcp.memory.db import open_db

    db = open_db(data_dir / "lancedb")
    TrialStore(db).record(make_trial())  # the other replica's table, done by the time ours opens
    real_open = db.open_table
    opens: list[str] = []

    def not_yet(name: str, **kw):  # its first version is still being written
        opens.append(name)
        if len(opens) <= 2:
            raise ValueError(f"Table '{name}' was not found")
        return real_open(name, **kw)

    def loses(*args, **kw):
        raise RuntimeError("lance error: Retryable commit conflict for version 1")

    monkeypatch.setattr(db, "open_table", not_yet)
    monkeypatch.setattr(db, "create_table", loses)
    store = TrialStore(db)
    assert opens == ["trials"] * 3
    assert [t.id for t in store.trials()] == ["get_weather:0:0"]
    assert store.record(make_trial(slot=1)) and not store.record(make_trial())


def test_a_table_that_never_opens_fails_with_the_create_error(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that refuses every create (read-only, wrong credentials) is not retried forever."""
    from ste_mcp.memory import db as dbmod

    db = dbmod.open_db(data_dir / "lancedb")
    monkeypatch.setattr(dbmod, "OPEN_DEADLINE_S", 0.2)

    def refused(*args, **kw):
        raise OSError("permission denied: trials/_versions/1.manifest")

    monkeypatch.setattr(db, "create_table", refused)
    with pytest.raises(OSError, match="permission denied"):
        TrialStore(db)


def test_stats_and_progress(store: TrialStore) -> None:
    store.record(make_trial(episode=0, slot=0, prompt_tokens=100, completion_tokens=20))
    store.record(make_trial(episode=0, slot=1, ok=False))
    store.record(make_trial(episode=1, slot=0, reflection="no"))
    store.record(make_trial(tool="get_time", episode=0, slot=0))
    stats = store.stats()
    w = stats["get_weather"]
    assert (w["trials"], w["successful_trials"], w["episodes"]) == (3, 1, 2)
    assert (w["calls"], w["successful_calls"], w["tokens"]) == (3, 2, 120)
    assert stats["get_time"]["trials"] == 1
    assert store.episode_progress() == {"get_weather": {0: 2, 1: 1}, "get_time": {0: 1}}
    assert [t.slot for t in store.episode_trials("get_weather", 0)] == [0, 1]


def test_filters_and_verdicts(store: TrialStore) -> None:
    store.record(make_trial(slot=0))
    store.record(make_trial(slot=1, ok=False))  # no successful call: not judgeable
    store.record(make_trial(slot=2, final_answer=None, status="turns_exhausted"))
    assert [t.id for t in store.unjudged()] == ["get_weather:0:0"]
    store.set_verdict("get_weather:0:0", {"informative": True, "faithful": True, "appropriate": True})
    assert store.unjudged() == []
    assert store.get("get_weather:0:0").verdict == {
        "informative": True,
        "faithful": True,
        "appropriate": True,
    }
    with pytest.raises(KeyError, match="no trial with id 'nope'"):
        store.set_verdict("nope", {})
    assert [t.slot for t in store.trials(status="turns_exhausted")] == [2]
    assert len(store.trials(tool="get_weather")) == 3 and store.trials(tool="other") == []
    assert len(store.trials(since=datetime.now(UTC) - timedelta(minutes=5))) == 3
    assert store.trials(since=datetime.now(UTC) + timedelta(seconds=1)) == []


def test_secrets_never_reach_the_files(store: TrialStore, data_dir: Path) -> None:
    trial = make_trial(
        query=f"use key {SECRET}",
        turns=[
            Turn(
                raw=f'Action Input: {{"key": "{SECRET}"}}',
                kind="call",
                tool="get_weather",
                arguments={"key": SECRET},
                observation="token=abcdef123456 and Bearer eyabcdefghijklmnop",
            ),
        ],
        messages=[{"role": "user", "content": f"Observation: {SECRET}"}],
        final_answer=f"the key is {SECRET}",
    )
    store.record(trial)
    blob = b"".join(p.read_bytes() for p in (data_dir / "lancedb").rglob("*") if p.is_file())
    assert SECRET.encode() not in blob
    assert b"abcdef123456" not in blob and b"eyabcdefghijklmnop" not in blob
    got = store.get(trial.id)
    assert got.turns[0].arguments == {"key": REDACTED}
    assert REDACTED in got.query and REDACTED in got.final_answer


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcDEF123456789xyz", "abcDEF123456789xyz"),
        ("key sk-proj-abcdefghijklmnop1234", "abcdefghijklmnop1234"),
        ('{"api_key": "live_123abc", "city": "Paris"}', "live_123abc"),
        ("GET /v1/weather?apikey=ZZZ999&city=Paris", "ZZZ999"),
        ("hash 0123456789abcdef0123456789abcdef01", "0123456789abcdef"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("github ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "aBcDeFgHiJkLmNoPqRsTuVwXyZ"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJ",
        ),
        ("blob QWxhZGRpbjpvcGVuIHNlc2FtZQ1234567890abcdXYZ", "QWxhZGRpbjpvcGVu"),
        ("password: hunter22", "hunter22"),
        # a quoted value is redacted up to its closing quote, whatever it holds (a generated password)
        ('{"password":"!AN}nv(J[uV}MwkGT2h&1,cNoj{PM", "n": 1}', "MwkGT2h"),
        ('{"token": "x y,z;w", "city": "Oslo"}', "y,z;w"),
        ('{"password": "ab\\"c}d ef"}', "d ef"),
        ('"{\\"password\\":\\"ab}cd efg\\"}"', "cd efg"),  # inside a JSON string
        ("{'secret': 'q w e'}", "q w e"),
        ("session Ab3dE_fG7hI_jK9lM_nO1pQ_rS5tU_vW", "Ab3dE_fG7hI"),  # underscores do not make it a name
    ],
)
def test_credential_shapes_are_redacted(text: str, secret: str) -> None:
    out = Redactor().redact(text)
    assert REDACTED in out and secret not in out
    if '"city": "Oslo"' in text or '"n": 1' in text:
        assert out.endswith(('"city": "Oslo"}', '"n": 1}'))  # the next key is kept


@pytest.mark.parametrize(
    "text",
    [
        "What's the weather in Paris tomorrow?",
        "/api/v1/weather/forecast/daily/paris/france/europe",
        "Supercalifragilisticexpialidocious, ThisIsACamelCaseIdentifierWithNoDigits",
        '{"max_tokens": 100, "city": "Oslo"}',
        # a tool name is an identifier, not a key: redacted, the explorer's requests hid which tool they named
        "Action: Password_Generator_API__Password_of_length_50",
        'the "password" field is required; {"password": "", "city": "Oslo"}',
        '{"password":"[REDACTED] of 50 characters"}',  # a summary's shape of a redacted value tells no secret
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert Redactor().redact(text) == text


def test_known_secret_values_and_their_url_encoding() -> None:
    r = Redactor(["p@ss word!"])
    assert r.redact("a p@ss word! b p%40ss%20word%21 c") == f"a {REDACTED} b {REDACTED} c"
    assert r.redact_value({"k": ["p@ss word!", 3, None]}) == {"k": [REDACTED, 3, None]}
