"""Plug-in frame processors: what each point builds for a call from its setting, and the one-line
start-up error for a name that cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pipecat.processors.frame_processor import FrameProcessor

from config.settings import ConfigError, Settings, get_settings
from pipeline import plugins
from processors.card_redactor import CardRedactor
from processors.silence_budget import SilenceBudget
from processors.speech_guard import SpeechGuard
from tests.pipeline.plugin_support import call_context

SUPPORT = "tests.pipeline.plugin_support"


def _built(settings: Settings, call_sid: str = "CA1") -> dict[str, list[FrameProcessor]]:
    return plugins.build(call_context(settings, lambda _name, _detail: None, call_sid))


def _types(built: dict[str, list[FrameProcessor]]) -> dict[str, list[type]]:
    return {point: [type(processor) for processor in made] for point, made in built.items()}


def test_the_defaults_are_our_own_processors_where_the_pipeline_had_them() -> None:
    settings = Settings(_env_file=None)
    plugins.check(settings)
    first, second = _built(settings), _built(settings)
    assert list(first) == ["after_stt", "before_llm", "after_llm", "before_tts", "after_tts"]
    assert _types(first) == {"after_stt": [CardRedactor], "before_llm": [CardRedactor],
                             "after_llm": [SilenceBudget], "before_tts": [SpeechGuard], "after_tts": []}
    # New processors for every call: a processor belongs to one pipeline.
    ours = {id(p) for made in first.values() for p in made}
    assert ours.isdisjoint(id(p) for made in second.values() for p in made)


def test_an_empty_setting_removes_the_processors_at_its_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSORS_AFTER_STT", "")
    monkeypatch.setenv("PROCESSORS_BEFORE_TTS", " ")
    assert _types(_built(Settings(_env_file=None))) == {
        "after_stt": [], "before_llm": [CardRedactor], "after_llm": [SilenceBudget], "before_tts": [],
        "after_tts": []}


def test_listed_factories_are_built_in_order_for_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSORS_AFTER_TTS", f"{SUPPORT}:two_filters, {SUPPORT}:named_after_the_call")
    settings = Settings(_env_file=None)
    plugins.check(settings)
    assert [p.name for p in _built(settings, "CA1")["after_tts"]] == ["first", "second", "for-CA1"]
    assert [p.name for p in _built(settings, "CA2")["after_tts"]] == ["first", "second", "for-CA2"]


@pytest.mark.parametrize(("name", "error"), [
    ("nope.mod:make", "ModuleNotFoundError: No module named 'nope'"),
    (f"{SUPPORT}:missing", f"AttributeError: module '{SUPPORT}' has no attribute 'missing'"),
    (f"{SUPPORT}:NOT_CALLABLE", "TypeError: str is not callable"),
    ("nobody_declares_this", "LookupError: no installed package declares it in"
                             " service_desk_agent.processors (a module's factory is package.module:factory)"),
])
def test_a_name_that_cannot_be_imported_stops_start_up_naming_its_setting(
        name: str, error: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(_env_file=None, processors_after_llm=f"pipeline.own_processors:silence_budget,{name}")
    with pytest.raises(ConfigError) as stopped:
        plugins.check(settings)
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        f"configuration error: PROCESSORS_AFTER_LLM: cannot import {name!r} ({error})\n")


def test_the_launcher_does_not_start_with_a_plug_in_it_cannot_import(tmp_path: Path) -> None:
    # From an empty folder: no developer's .env.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]),
           "PROCESSORS_BEFORE_LLM": "nope.mod:make"}
    ran = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[-1] == ("configuration error: PROCESSORS_BEFORE_LLM: cannot import"
                                           " 'nope.mod:make' (ModuleNotFoundError: No module named 'nope')")


def test_a_misspelt_name_is_refused_with_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROCESSORS_AFTER_STT", "examples.upset_caller upset_caller")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError):
            get_settings()
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().err == (
        "configuration error: PROCESSORS_AFTER_STT: use package.module:factory (or an entry point's"
        " name), not 'examples.upset_caller upset_caller'\n")


def test_a_factory_that_returns_no_processor_fails_naming_its_setting() -> None:
    settings = Settings(_env_file=None, processors_after_tts=f"{SUPPORT}:not_a_processor")
    plugins.check(settings)  # importable: only building the call shows what it returns
    with pytest.raises(plugins.PluginError, match=(
            f"^PROCESSORS_AFTER_TTS: '{SUPPORT}:not_a_processor' returned str,"
            " not a FrameProcessor or a list of them$")):
        _built(settings)


def test_an_installed_package_declares_a_factory_by_name(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # What pip installs for a package whose pyproject has
    # [project.entry-points."service_desk_agent.processors"] demo_filters = "...:two_filters".
    installed = tmp_path / "demo_filters-1.0.dist-info"
    installed.mkdir()
    (installed / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-filters\nVersion: 1.0\n")
    (installed / "entry_points.txt").write_text(
        f"[{plugins.ENTRY_POINT_GROUP}]\ndemo_filters = {SUPPORT}:two_filters\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings(_env_file=None, processors_after_tts="demo_filters")
    plugins.check(settings)
    assert [p.name for p in _built(settings)["after_tts"]] == ["first", "second"]
