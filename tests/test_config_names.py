"""Renamed settings keys: the old spelling is still read (TOML file, environment, overrides), with a warning
naming the new one; the new spelling wins when both are given."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from ste_mcp.config import RENAMED, ConfigError, load_settings


def test_old_keys_in_a_toml_file_are_read_with_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "ste-mcp.toml"
    config.write_text(
        "[memory]\npoll_interval_s = 5\n\n[explorer]\nidle_poll_s = 7\n\n[finetune]\npoll_seconds = 9\n"
    )
    with pytest.warns(FutureWarning) as caught:
        settings = load_settings(config, data_dir=str(tmp_path / "data"))
    assert (settings.memory.poll_s, settings.explorer.poll_s, settings.finetune.poll_s) == (5.0, 7.0, 9.0)
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "setting explorer.idle_poll_s is renamed explorer.poll_s; the old name will stop working",
        "setting finetune.poll_seconds is renamed finetune.poll_s; the old name will stop working",
        "setting memory.poll_interval_s is renamed memory.poll_s; the old name will stop working",
    ]


def test_old_key_in_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STE_MCP_MEMORY__POLL_INTERVAL_S", "3")
    with pytest.warns(FutureWarning, match=r"memory\.poll_interval_s is renamed memory\.poll_s"):
        settings = load_settings(data_dir=str(tmp_path / "data"))
    assert settings.memory.poll_s == 3.0


def test_the_new_key_wins_over_the_old_one(tmp_path: Path) -> None:
    config = tmp_path / "ste-mcp.toml"
    config.write_text("[memory]\npoll_interval_s = 5\n")
    with pytest.warns(FutureWarning):
        settings = load_settings(config, data_dir=str(tmp_path / "data"), memory={"poll_s": 1})
    assert settings.memory.poll_s == 1.0


def test_new_keys_read_without_a_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = load_settings(data_dir=str(tmp_path / "data"), explorer={"poll_s": 4})
    assert settings.explorer.poll_s == 4.0


def test_old_keys_are_not_fields_any_more() -> None:
    """Each renamed key maps an old name that no section has any more to a field that exists."""
    from ste_mcp.config import Settings

    for (section, old), new in RENAMED.items():
        fields = Settings.model_fields[section].annotation.model_fields
        assert old not in fields and new in fields, (section, old, new)


def test_a_bad_value_under_the_old_name_is_still_refused(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match="poll_s"):
        load_settings(data_dir=str(tmp_path / "data"), memory={"poll_interval_s": -1})
