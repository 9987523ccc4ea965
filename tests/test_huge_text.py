"""One huge answer (50 MB) is validated with bounded work: each conversation is normalised once for every
check comparing rows, and the near-duplicate and n-gram checks read a bounded prefix of each text."""

import json

import polars as pl

from conftest import DPO_DEMO, json_rows, run_cli


def demo_pairs(n: int) -> list[dict]:
    return [{"prompt": r["conversations"][-1]["value"], "chosen": r["chosen"]["value"],
             "rejected": r["rejected"]["value"]} for r in json_rows(DPO_DEMO)[:n]]


def test_validate_reads_a_50_mb_answer_and_reports_on_it(tmp_path):
    rows = demo_pairs(8)
    text = "\n\n".join(r["chosen"]["value"] for r in json_rows(DPO_DEMO))  # real prose, lines and paragraphs
    rows[3]["chosen"] = (text * (50_000_000 // len(text) + 1))[:50_000_000]
    path = tmp_path / "huge.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = run_cli("validate", path, "--no-stamp", "--json", "--examples", "8")
    assert done.returncode in (0, 1), done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["empty_text"]["passed"] and checks["schema"]["passed"] and checks["chosen_differs"]["passed"]
    longer = sum(len(r["chosen"]) > len(r["rejected"]) for r in rows) / len(rows)
    assert checks["length_bias"]["figures"]["chosen_longer_frac"] == round(longer, 4)


def test_each_conversation_is_normalised_once_per_validation(monkeypatch):
    from prefdata.io import read_dataset
    from prefdata.validators import rows
    from prefdata.validators.api import validate_frame

    calls = []
    real = rows.key_hash

    def counted(frame, column):
        calls.append(column)
        return real(frame, column)

    monkeypatch.setattr(rows, "key_hash", counted)
    frame = read_dataset(DPO_DEMO).frame
    report = validate_frame(frame, "pairwise")
    assert sorted(calls) == ["chosen", "prompt", "rejected"]
    # the figures are curation's: `prefdata dedupe` finds as many repeats and identical pairs
    from prefdata.curate import run_step
    from prefdata.curate.config import DedupeConfig

    dropped = run_step(frame, DedupeConfig()).dropped
    assert report.check("exact_duplicates").figures["rows"] == (dropped["reason"] == "exact_duplicate").sum()
    assert report.check("chosen_differs").value == (dropped["reason"] == "identical_chosen_rejected").sum()


def test_near_duplicates_compare_a_bounded_prefix_of_each_text():
    from prefdata.validators.rows import SHINGLED_CHARS, near_repeat

    prose = " ".join(r["chosen"]["value"] for r in json_rows(DPO_DEMO))
    head = prose[:SHINGLED_CHARS]
    tails = [" ".join(reversed(prose.split())), prose.upper()[::-1]]  # different words after the prefix
    texts = pl.Series([head + tails[0] * 3, head + tails[1] * 3, "an unrelated short answer"])
    assert near_repeat(texts, 0.8).to_list() == [False, True, False]
