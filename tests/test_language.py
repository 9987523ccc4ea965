"""Language identification (lingua): the filter step keeps the prompts' languages asked for, every other row on
record with its reason and language; the validators flag pairs answered in another language than the prompt."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from conftest import run_cli
from prefdata.curate.config import FilterConfig
from prefdata.curate.filters import filter_pairs
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset

pytest.importorskip("lingua")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PLANTED = [  # (prompt, chosen, rejected): German, French and Chinese prompts, one German prompt answered in English
    ("Wie lange muss ich Spaghetti kochen, damit sie bissfest bleiben?",
     "Etwa acht bis zehn Minuten in reichlich kochendem Salzwasser, je nach Sorte.", "Nimm einfach irgendwas."),
    ("Quelle est la meilleure saison pour visiter la Bretagne et pourquoi ?",
     "La fin du printemps: il fait doux et les côtes sont encore calmes.", "Je ne sais pas vraiment."),
    ("请问怎样才能在一个月内提高我的中文写作水平？",
     "每天坚持写日记，并请老师批改，同时多阅读优秀的文章。", "随便写写就好了。"),
    ("Kannst du mir erklären, wie eine Wärmepumpe im Winter funktioniert?",
     "A heat pump moves heat from the outside air into the house, even when it is cold outside.",
     "It uses electricity to move heat around, which is more efficient than making heat."),
]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> pl.DataFrame:
    """The shared HH-RLHF pairs (English) with the planted ones appended."""
    path = tmp_path_factory.mktemp("lang") / "mixed.jsonl"
    hh = read_dataset(SHARED / "hh-rlhf" / "harmless-base_test.jsonl.gz", on_error="skip").frame
    planted = [{"prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": r}]} for p, c, r in PLANTED]
    rows = hh.select("prompt", "chosen", "rejected").to_dicts() + planted
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return read_dataset(path).frame


def test_the_filter_keeps_the_languages_asked_for_and_records_the_rest(mixed):
    kept, dropped = filter_pairs(mixed, FilterConfig(language=["en", "FR"]))
    assert kept.height + dropped.height == mixed.height
    by_prompt = dict(zip(dropped["detail"], dropped["reason"]))
    assert by_prompt.get("prompt in de, not en, fr") == "language" and "prompt in zh, not en, fr" in by_prompt
    assert dropped.filter(pl.col("detail") == "prompt in de, not en, fr").height == 2  # both German prompts
    assert "fr" in kept["language"].to_list() and kept["language"].null_count() > 0  # undetermined: kept
    assert kept.filter(pl.col("language") == "en").height >= 0.95 * (mixed.height - len(PLANTED))
    assert dropped.height < 20  # at most a handful of short English prompts taken for another language


def test_undetermined_prompts_go_when_told(mixed):
    kept, dropped = filter_pairs(mixed, FilterConfig(language=["en"], keep_undetermined=False))
    assert kept["language"].null_count() == 0 and (kept["language"] == "en").all()
    assert "language_undetermined" in dropped["reason"].to_list()


def test_bad_codes_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="not ISO 639-1 codes .*: english"):
        FilterConfig(language=["english"])
    done = run_cli("filter", SHARED / "llamafactory" / "dpo_en_demo.json", tmp_path / "out.jsonl", "--language", "e1")
    assert done.returncode == 2 and done.stderr.strip().startswith("error: --language: ") and "e1" in done.stderr


def test_mixed_language_pairs_are_flagged_by_the_validators(mixed, tmp_path):
    kept, _ = filter_pairs(mixed, FilterConfig(language=["de", "en"]))
    path = tmp_path / "kept.parquet"
    kept.write_parquet(path)
    from prefdata.validators import validate

    check = validate(path, stamp=False, examples=100).check("mixed_language")
    assert not check.skipped and 1 <= check.figures["rows"] < 20 and len(check.examples) == check.figures["rows"]
    planted = [e for e in check.examples if e["prompt"].startswith("Kannst du mir erklären")]
    assert planted and planted[0]["language"] == "de" and planted[0]["chosen_language"] == "en"
    assert not any(e["prompt"].startswith("Wie lange muss ich") for e in check.examples)  # German answered in German
    assert validate(SHARED / "llamafactory" / "dpo_en_demo.json", stamp=False).check("mixed_language").skipped


def test_a_50_mb_answer_costs_a_page(tmp_path):
    """Texts are judged on their first 2,000 characters: a huge hostile answer does not stall detection."""
    from prefdata.curate.language import detect

    found = detect(pl.Series(["Guten Morgen, wie geht es dir heute? " * 1_500_000, None, "", "🙂🙂", "12345"]))
    assert found.to_list()[:1] == ["de"] and found.to_list()[1:3] == [None, None]


def test_without_lingua_the_step_says_what_to_install(monkeypatch, mixed):
    import sys

    from prefdata.curate import language

    monkeypatch.setitem(sys.modules, "lingua", None)  # `import lingua` now fails as on a machine without it
    language._detector.cache_clear()
    try:
        with pytest.raises(PrefdataError, match=r"pip install 'prefdata\[language\]'"):
            filter_pairs(mixed.head(3), FilterConfig(language=["en"]))
    finally:
        monkeypatch.undo()
        language._detector.cache_clear()
