"""Languages as data: a lang.json is checked field by field, and a new folder is a new
language with no code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.core.language import PROMPT_NAMES, Language
from appliance.sounds import languages
from appliance.sounds.languages import LanguageError, load


def lang_json(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (languages.HERE / "nl" / "lang.json").read_text(encoding="utf-8"))
    doc.update(changes)
    return doc


def write(folder: Path, code: str, doc: Any) -> Path:
    (folder / code).mkdir(parents=True)
    path = folder / code / "lang.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_a_seventh_language_is_a_folder_and_nothing_else(tmp_path: Path) -> None:
    """Issue 18: adding a language is a folder of recordings plus one entry, no code."""
    write(tmp_path, "en", json.loads((languages.HERE / "en" / "lang.json").read_text()))
    es = lang_json(name="Español", english_name="Spanish", espeak_voice="es",
                   num2words="es", reviewed=False)
    write(tmp_path, "es", es)
    found = load(tmp_path)
    assert [lang.code for lang in found] == ["en", "es"]
    spanish = found[1]
    assert spanish.english_name == "Spanish"
    assert spanish.words(21) == ["veintiuno"]
    assert spanish.words(135) == ["ciento", "treinta", "y", "cinco"]
    assert "num-veintiuno" in spanish.prompt_names


@pytest.mark.parametrize(("doc", "expected"), [
    pytest.param("{not json", "cannot be read", id="not-json"),
    pytest.param([1, 2], "expected an object", id="not-an-object"),
    pytest.param({k: v for k, v in lang_json().items() if k != "espeak_voice"},
                 "espeak_voice: required field is missing", id="missing-field"),
    pytest.param(lang_json(voice="x"), "voice: unknown field", id="unknown-field"),
    pytest.param(lang_json(name=" "), "name: expected a non-empty string", id="blank-name"),
    pytest.param(lang_json(num2words="tlh"), "num2words: 'tlh' is not a language",
                 id="unknown-num2words"),
    pytest.param(lang_json(reviewed="yes"), "reviewed: expected true or false",
                 id="reviewed-not-bool"),
    pytest.param(lang_json(number_words={"nul": ""}), "number_words: expected an object",
                 id="empty-substitute"),
    pytest.param(lang_json(prompts={k: v for k, v in lang_json()["prompts"].items()
                                    if k != "menu-goodbye"}),
                 "prompts.menu-goodbye: missing", id="missing-prompt"),
    pytest.param(lang_json(number_words={"één": "tweé"}), "would share the recording",
                 id="two-words-one-file"),
])
def test_a_wrong_lang_json_is_refused_naming_file_and_field(
        tmp_path: Path, doc: Any, expected: str) -> None:
    path = write(tmp_path, "xx", doc)
    with pytest.raises(LanguageError) as error:
        load(tmp_path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_a_folder_name_must_be_a_language_code() -> None:
    with pytest.raises(ValueError, match="not a language code"):
        Language.from_json("Dutch!", lang_json(), "x/lang.json")


def test_the_installed_languages_have_every_prompt() -> None:
    for lang in languages.installed():
        assert set(PROMPT_NAMES) <= set(lang.prompts), lang.code
    assert languages.english_name("nl") == "Dutch"
    assert languages.english_name("xx") == "xx" and languages.english_name(None) == ""
    with pytest.raises(LanguageError, match="unknown language 'xx'"):
        languages.get("xx")


def test_reviewed_says_which_translations_a_native_speaker_checked() -> None:
    reviewed = {lang.code for lang in languages.installed() if lang.reviewed}
    assert reviewed == {"en", "de"}
