"""PII (presidio-analyzer's pattern recognizers): e-mail, phone, credit-card (Luhn), IBAN (mod 97) and IP addresses
found in crafted text and in the shared real data; redact, drop and flag; hostile texts never stop the step."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest
import yaml

from conftest import DPO_DEMO, HH, ROOT, run_cli
from prefdata import schema
from prefdata.curate import run_step
from prefdata.curate.config import PiiConfig
from prefdata.curate.pii import Unscanned, figures, scan
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset

pytest.importorskip("presidio_analyzer")

FOUND = {  # entity -> a crafted text holding one, and the span that must be found
    "EMAIL_ADDRESS": ("write to jane.roe@example.org today", "jane.roe@example.org"),
    "PHONE_NUMBER": ("call +1 (415) 555-2671 after six", "+1 (415) 555-2671"),
    "CREDIT_CARD": ("card 4111 1111 1111 1111 expires soon", "4111 1111 1111 1111"),  # a valid Luhn checksum
    "IBAN_CODE": ("pay to DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),  # mod 97 holds
    "IP_ADDRESS": ("the server at 192.168.10.7 answered", "192.168.10.7"),
}
NOT_FOUND = [
    "card 4111 1111 1111 1112 expires soon",  # Luhn fails
    "the result is 1234567890123456",  # a random 16-digit number
    "pay to DE89 3704 0044 0532 0130 01 please",  # mod 97 fails
    "256626720691 + 1646615806005 = 1903242526696",  # sums that libphonenumber and Luhn accept
    "the answer is 1007411131329104.",
    '{"changed_on": 1679433381, "max_value": 1679433481}',  # timestamps
    "write to someone@foo.notarealtld",  # no public suffix
    "https://www.google.com/maps/place/North+California+Avenue/@37.3362725,-121.8244116,16z",  # `@` in a URL
    "version 2.10 of the 3.4 release, 42 people, 7 days",
]


def pairs(*rows: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame({
        "pair_id": [f"p{i}" for i in range(len(rows))],
        "prompt": [[{"role": "user", "content": p}] for p, _, _ in rows],
        "chosen": [[{"role": "assistant", "content": c}] for _, c, _ in rows],
        "rejected": [[{"role": "assistant", "content": r}] for _, _, r in rows],
    })


def texts(frame: pl.DataFrame, field: str) -> list[str]:
    return frame.select(pl.col(field).list.eval(pl.element().struct.field("content")).list.join("\n"))[field].to_list()


def conserved(frame: pl.DataFrame, result: schema.StageResult) -> None:
    assert result.kept.height + result.dropped.height == frame.height
    assert result.dropped.columns == list(schema.DROPPED) and set(result.dropped["stage"]) <= {"pii"}


@pytest.fixture(scope="module")
def hh() -> pl.DataFrame:
    return read_dataset(HH, on_error="skip").frame


@pytest.mark.parametrize("entity", sorted(FOUND))
def test_each_entity_is_found_in_crafted_text(entity):
    text, value = FOUND[entity]
    assert [(text[s.start:s.end], s.entity) for s in scan(text)] == [(value, entity)]


def test_ipv6_and_several_entities_in_one_text():
    text = "from 2001:db8::1 and 10.0.0.1, mail ops@example.com or card 5555-5555-5555-4444"
    found = {text[s.start:s.end]: s.entity for s in scan(text)}
    assert found == {"2001:db8::1": "IP_ADDRESS", "10.0.0.1": "IP_ADDRESS", "ops@example.com": "EMAIL_ADDRESS",
                     "5555-5555-5555-4444": "CREDIT_CARD"}


@pytest.mark.parametrize("text", NOT_FOUND)
def test_checksums_and_shapes_keep_ordinary_numbers_out(text):
    assert scan(text) == []


def test_a_context_word_admits_an_unformatted_number():
    assert [s.entity for s in scan("my visa card is 4111111111111111")] == ["CREDIT_CARD"]
    assert [s.entity for s in scan("her mobile is 4155552671")] == ["PHONE_NUMBER"]
    assert scan("the sum is 4111111111111111") == []


def test_redact_replaces_each_span_and_leaves_everything_else_byte_identical():
    frame = pairs(("What is Jane's e-mail? ß ✓ \u200b", FOUND["EMAIL_ADDRESS"][0],
                   "call +1 (415) 555-2671 or 10.0.0.1"), ("nothing here 42", "  spaces\tand\nlines  ", "plain"))
    result = run_step(frame, PiiConfig(action="redact"))
    conserved(frame, result)
    kept = result.kept
    assert texts(kept, "chosen") == ["write to <EMAIL_ADDRESS> today", "  spaces\tand\nlines  "]
    assert texts(kept, "rejected") == ["call <PHONE_NUMBER> or <IP_ADDRESS>", "plain"]
    assert texts(kept, "prompt") == texts(frame, "prompt")  # nothing found there: the very same text
    assert kept.drop("pii").row(1) == frame.row(1) and kept.schema["chosen"] == frame.schema["chosen"]
    assert kept["pii"].to_list()[0] == [
        {"field": "chosen", "turn": 0, "entity": "EMAIL_ADDRESS", "start": 9, "end": 29, "score": 1.0},
        {"field": "rejected", "turn": 0, "entity": "PHONE_NUMBER", "start": 5, "end": 22, "score": 0.4},
        {"field": "rejected", "turn": 0, "entity": "IP_ADDRESS", "start": 26, "end": 34, "score": 0.6}]
    assert kept["pii"].to_list()[1] == []


def test_redact_reaches_every_turn_of_a_conversation():
    frame = pl.DataFrame({"prompt": [[{"role": "system", "content": "admin: root@example.net"},
                                      {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                      {"role": "user", "content": "my IBAN is GB82 WEST 1234 5698 7654 32"}]],
                          "chosen": [[{"role": "assistant", "content": "ok"}]],
                          "rejected": [[{"role": "assistant", "content": "no"}]]})
    kept = run_step(frame, PiiConfig()).kept
    assert texts(kept, "prompt") == ["admin: <EMAIL_ADDRESS>\nhi\nhello\nmy IBAN is <IBAN_CODE>"]
    assert [(s["turn"], s["entity"]) for s in kept["pii"][0]] == [(0, "EMAIL_ADDRESS"), (3, "IBAN_CODE")]


def test_drop_records_the_entity_types_never_the_values():
    frame = pairs(("hi", FOUND["CREDIT_CARD"][0], FOUND["EMAIL_ADDRESS"][0]), ("hi", "clean", "also clean"))
    result = run_step(frame, PiiConfig(action="drop"))
    conserved(frame, result)
    assert result.kept["pair_id"].to_list() == ["p1"] and "pii" not in result.kept.columns
    row = result.dropped.row(0, named=True)
    assert row["reason"] == "pii" and row["row_id"] == "p0"
    assert row["detail"] == "CREDIT_CARD x1, EMAIL_ADDRESS x1 in chosen, rejected"
    assert "4111" not in row["detail"] and "@" not in row["detail"]


def test_flag_keeps_every_pair_and_the_entities_asked_for_only():
    frame = pairs(("hi", FOUND["IP_ADDRESS"][0], FOUND["EMAIL_ADDRESS"][0]))
    result = run_step(frame, PiiConfig(action="flag", entities=["ip"], fields=["chosen"]))
    assert result.dropped.height == 0 and texts(result.kept, "chosen") == texts(frame, "chosen")
    assert [s["entity"] for s in result.kept["pii"][0]] == ["IP_ADDRESS"]


def test_config_names_entities_by_alias_and_refuses_unknown_ones():
    assert PiiConfig(entities=["email", "Phone", "IBAN_CODE", "email"]).entities == [
        "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE"]
    with pytest.raises(ValueError, match="unknown entities PERSON"):
        PiiConfig(entities=["PERSON"])


def test_on_hh_rlhf_every_row_is_kept_or_dropped_and_what_is_found_is_real(hh):
    redacted = run_step(hh, PiiConfig(action="redact"))
    conserved(hh, redacted)
    found = figures(PiiConfig(action="redact"), redacted)
    assert set(found["entities"]) == {"EMAIL_ADDRESS", "PHONE_NUMBER"} and found["unscanned"] == 0
    assert found["entities"]["EMAIL_ADDRESS"]["spans"] >= 5 and found["entities"]["PHONE_NUMBER"]["spans"] >= 10
    every = [t for field in ("prompt", "chosen", "rejected") for t in texts(redacted.kept, field)]
    assert any("Sure, her email address is <EMAIL_ADDRESS>" in t for t in every)
    assert any("cell phone number: <PHONE_NUMBER>" in t for t in every)
    assert not any("kathy.bates@gmail.com" in t or "(512) 555-2994" in t for t in every)
    dropped = run_step(hh, PiiConfig(action="drop"))
    conserved(hh, dropped)
    assert dropped.dropped.height == found["pairs_with_pii"] and set(dropped.dropped["reason"]) == {"pii"}
    assert figures(PiiConfig(action="drop"), dropped)["entities"] == found["entities"]
    assert not dropped.dropped["detail"].str.contains("@").any()


def test_the_math_in_dpo_en_demo_is_not_taken_for_phone_or_card_numbers():
    frame = read_dataset(DPO_DEMO).frame
    result = run_step(frame, PiiConfig(action="flag"))
    found = figures(PiiConfig(action="flag"), result)
    assert set(found["entities"]) == {"EMAIL_ADDRESS"}  # the example addresses in a Python snippet


def test_hostile_texts_never_stop_the_step():
    huge = "call 555-123-4567 " + "x" * (50 * 1024 * 1024)
    frame = pairs(("hi", huge, "ok"), ("[" * 90_000 + " a@example.com", "nul\x00 b@example.com", "ok"),
                  ("hi", "fine", "ok"))
    redacted = run_step(frame, PiiConfig(action="redact"))
    conserved(frame, redacted)
    assert redacted.dropped["reason"].to_list() == ["pii_unscanned"]
    assert redacted.dropped["detail"][0].startswith("chosen turn 0: 52,428,818 characters, over max_chars")
    assert texts(redacted.kept, "prompt")[0].endswith(" <EMAIL_ADDRESS>")
    assert texts(redacted.kept, "chosen")[0] == "nul\x00 <EMAIL_ADDRESS>"
    flagged = run_step(frame, PiiConfig(action="flag"))
    assert flagged.kept.height == 3 and flagged.kept["pii"][0] is None
    assert figures(PiiConfig(action="flag"), flagged)["unscanned"] == 1
    assert scan("lone \ud800 surrogate, mail c@example.com")[0].entity == "EMAIL_ADDRESS"
    with pytest.raises(Unscanned, match="over max_chars"):
        scan("x" * 11, max_chars=10)


def test_a_text_presidio_fails_on_is_set_aside_with_its_reason(monkeypatch):
    from prefdata.curate import pii

    def fails(*args, **kwargs):
        raise RecursionError("too deep")

    monkeypatch.setattr(pii._recognizers()["EMAIL_ADDRESS"], "analyze", fails)
    frame = pairs(("hi", "a@example.com", "ok"), ("hi", "no digits", "ok"))
    result = run_step(frame, PiiConfig(action="drop"))
    conserved(frame, result)
    assert result.dropped.select("reason", "detail").row(0) == (
        "pii_unscanned", "chosen turn 0: presidio failed: RecursionError")


def test_a_lone_surrogate_in_a_file_is_handled(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"prompt": "hi \\ud800 there", "chosen": "mail d@example.com", "rejected": "no"},
            {"prompt": "hi", "chosen": "ok", "rejected": "no"}]
    path.write_text("".join(json.dumps(r).replace("\\\\ud800", "\\ud800") + "\n" for r in rows))
    read = read_dataset(path, on_error="skip")
    result = run_step(read.frame, PiiConfig())
    assert read.rows_in == 2 and result.kept.height + result.dropped.height + read.dropped.height == 2


def test_without_presidio_the_step_says_what_to_install(monkeypatch):
    from prefdata.curate import pii

    for name in ("presidio_analyzer", "presidio_analyzer.predefined_recognizers"):
        monkeypatch.setitem(sys.modules, name, None)  # `import presidio_analyzer` now fails as on a machine without
    pii._recognizers.cache_clear()
    try:
        with pytest.raises(PrefdataError, match=r"pip install 'prefdata\[pii\]'"):
            run_step(pairs(("hi", "a@example.com", "no")), PiiConfig())
    finally:
        monkeypatch.undo()
        pii._recognizers.cache_clear()


def test_cli_drops_pairs_with_pii_on_the_real_data(tmp_path):
    out = tmp_path / "hh.jsonl"
    done = run_cli("pii", HH, out, "--on-error", "skip", "--action", "drop", "--entities", "EMAIL,PHONE", "--json",
                   check=True)
    figures_ = json.loads(done.stdout)
    assert figures_["rows_in"] == figures_["rows_out"] + sum(figures_["dropped"].values())
    assert figures_["dropped"]["pii"] == figures_["pii"]["pairs_with_pii"] > 10
    assert sum(1 for _ in out.open()) == figures_["rows_out"]
    dropped = [json.loads(line) for line in (tmp_path / "hh.dropped.jsonl").open()]
    assert {d["detail"].split(" x")[0] for d in dropped if d["reason"] == "pii"} <= {"EMAIL_ADDRESS", "PHONE_NUMBER"}


@pytest.mark.parametrize("args, says", [(("--action", "zap"), ("'--action'", "'zap'", "'redact'")),
                                        (("--entities", "EMAIL,NAME"), ("error: --entities: ", "NAME")),
                                        (("--fields", "answer"), ("error: --fields: ", "'prompt'"))])
def test_cli_bad_options_are_one_line_and_exit_2(tmp_path, args, says):
    """A choice the option's type knows (--action) is refused by the CLI; a value only the config checks (an entity
    name, a column) by the config, named by its option: one line either way."""
    done = run_cli("pii", DPO_DEMO, tmp_path / "out.jsonl", *args)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert all(part in done.stderr for part in says), done.stderr


def test_cli_without_the_extra_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['presidio_analyzer'] = None; sys.argv = ['prefdata', 'pii', sys.argv[1], "
            "sys.argv[2]]; from prefdata.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, str(DPO_DEMO), str(tmp_path / "o.jsonl")], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.strip() == ("error: PII detection needs presidio-analyzer: "
                                                            "pip install 'prefdata[pii]'")


def test_a_spec_build_redacts_and_the_card_counts_what_was_found(tmp_path):
    from prefdata.build import build

    spec = {"name": "pii", "sources": [{"path": str(HH), "on_error": "skip"}], "generate": None,
            "curate": [{"step": "pii", "action": "redact"}], "output": {"dir": str(tmp_path / "out")}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = build(path, quiet=True)
    counts = result.manifest["counts"]["pii"]
    assert counts["in"] == counts["kept"] and counts["pii"]["action"] == "redact"
    assert counts["pii"]["entities"]["EMAIL_ADDRESS"]["spans"] >= 5
    data = pl.read_parquet(tmp_path / "out" / "data.parquet")
    assert "pii" in data.columns and not texts(data, "chosen")[0].count("@example")
    card = (tmp_path / "out" / "README.md").read_text()
    phones = counts["pii"]["entities"]["PHONE_NUMBER"]
    assert "## PII" in card and f"PHONE_NUMBER {phones['spans']} in {phones['pairs']} pairs" in card
