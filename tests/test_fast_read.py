"""The vectorized reader (`prefdata.io.fast`) against the per-record path (`read_dataset(fast=False)`): the same
kept rows, rejects, ids, errors and figures on every shared file, on JSON Lines in every fast format made from
them, on planted bad lines, and on the hostile-input corpus."""

import json
import unicodedata
from pathlib import Path

import polars as pl
import pytest
from conftest import DPO_DEMO, KTO_DEMO, SHARED, hh_rows, json_rows

from prefdata.errors import PrefdataError
from prefdata.io import ids, read_dataset
from prefdata.io.fast import read_lines
from prefdata.io.raw import open_source
from prefdata.stats import dataset_stats


def outcome(path: Path, fast: bool, on_error: str = "skip", format: str | None = None):
    try:
        result = read_dataset(path, on_error=on_error, fast=fast, format=format)
    except PrefdataError as exc:
        return ("error", str(exc))
    return result


def assert_same(path: Path, on_error: str = "skip", format: str | None = None) -> None:
    fast, slow = outcome(path, True, on_error, format), outcome(path, False, on_error, format)
    if isinstance(slow, tuple) or isinstance(fast, tuple):
        assert fast == slow, path
        return
    assert fast.frame.equals(slow.frame), path
    assert fast.dropped.equals(slow.dropped), (path, fast.dropped, slow.dropped)
    assert (fast.format, fast.kind, fast.rows_in) == (slow.format, slow.kind, slow.rows_in)
    assert dataset_stats(fast) == dataset_stats(slow)


def assert_fast(path: Path) -> None:
    """The fast path itself read `path` (it did not hand the whole file back to the per-record path)."""
    opened = open_source(path)
    assert read_lines(opened, str(path), None, "skip") is not None


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(p for p in SHARED.rglob("*") if p.is_file() and p.suffix != ".md"),
                         ids=lambda p: p.name)
def test_every_shared_file_reads_the_same(path):
    assert_same(path)


def _formats_from_shared() -> dict[str, list[dict]]:
    """JSON Lines in each fast format, made from the shared data."""
    dpo, kto = json_rows(DPO_DEMO), json_rows(KTO_DEMO)
    standard = [{"prompt": r["conversations"][-1]["value"], "chosen": r["chosen"]["value"],
                 "rejected": r["rejected"]["value"]} for r in dpo]
    user = [{"role": "user", "content": r["prompt"]} for r in standard]
    return {
        "hh-rlhf": hh_rows(),
        "sharegpt": dpo,
        "sharegpt-kto": kto,
        "trl-standard": standard,
        "trl-conversational": [{"prompt": [u], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                "rejected": [{"role": "assistant", "content": r["rejected"]}]}
                               for u, r in zip(user, standard)],
        "trl-implicit": [{"chosen": [u, {"role": "assistant", "content": r["chosen"]}],
                          "rejected": [u, {"role": "assistant", "content": r["rejected"]}]}
                         for u, r in zip(user, standard)],
        "ultrafeedback-binarized": [{"prompt": r["prompt"],
                                     "chosen": [u, {"role": "assistant", "content": r["chosen"]}],
                                     "rejected": [u, {"role": "assistant", "content": r["rejected"]}],
                                     "score_chosen": 8.5 - i % 3, "score_rejected": i % 5}
                                    for i, (u, r) in enumerate(zip(user, standard))],
        "trl-unpaired": [{"prompt": r["prompt"], "completion": r["chosen"], "label": i % 2 == 0, "source": "x"}
                         for i, r in enumerate(standard)],
    }


@pytest.mark.parametrize("name", list(_formats_from_shared()))
def test_every_fast_format_reads_the_same(tmp_path, name):
    path = write_jsonl(tmp_path / f"{name}.jsonl", _formats_from_shared()[name])
    fast = read_dataset(path, on_error="skip")
    assert fast.format == name and fast.frame.height > 0
    assert_fast(path)
    assert_same(path)


def planted(good: dict) -> list[bytes]:
    """Bad and odd lines, each of a kind the per-record path has its own word for."""
    text = json.dumps(good)
    chosen = good["chosen"]
    return [
        b"{not json", b'{"chosen": 1, "rejected": 2}', text.encode().replace(b"}", b', "chosen": "x"}', 1),
        b'{"chosen": "a\x00b", "rejected": "c"}', json.dumps({**good, "chosen": chosen + "\u0000"}).encode(),
        text.encode().replace(b'"chosen": "', b'"chosen": "\\ud800', 1), b'{"chosen": NaN, "rejected": "x"}',
        b"[" * 100 + b"]" * 100, b'{"chosen": "x", "rejected": "y", "n": ' + b"9" * 200 + b"}",
        json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: ", "rejected": "\n\nHuman: hi\n\nAssistant: no"}).encode(),
        json.dumps({"chosen": "pre\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"})
        .encode(),
        json.dumps({"chosen": "\n\nAssistant: hi\n\nAssistant: a", "rejected": "\n\nAssistant: hi\n\nAssistant: b"})
        .encode(),
        json.dumps({"rejected": good["rejected"], "chosen": chosen}).encode(),  # keys in another order
        json.dumps({**good, "extra": {"deep": [1, 2]}}).encode(), b"\x0b", b"  \r", b"",
        json.dumps({"chosen": "\n\nHuman: \u00e9\u0301 \ufb01\n\nAssistant: a", "rejected": "\n\nHuman: \u00e9\u0301 "
                    "\ufb01\n\nAssistant: b"}).encode(),
        text.encode() + b"\r", json.dumps(good, ensure_ascii=True).encode(), b"[1, 2]", b'"text"',
    ]


@pytest.mark.parametrize("on_error", ["skip", "raise"])
def test_planted_bad_lines_give_the_same_rejects_and_errors(tmp_path, on_error):
    rows = hh_rows()[:40]
    bad = planted(rows[0])
    lines = [json.dumps(r).encode() for r in rows]
    mixed = [line for pair in zip(lines, bad + [b""] * len(lines)) for line in pair]
    path = tmp_path / "planted.jsonl"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    assert_fast(path)
    assert_same(path, on_error)
    # each bad line alone among good ones, so that "raise" reaches every message (invalid UTF-8 too, with which
    # the whole file takes the per-record path)
    for i, line in enumerate([*bad, b"\xff\xfe"]):
        one = tmp_path / f"one{i}.jsonl"
        one.write_bytes(b"\n".join(lines[:3] + [line] + lines[3:6]))
        assert_same(one, on_error)


def test_a_first_record_of_another_shape_falls_back_whole(tmp_path):
    rows = [{"prompt": "p", "chosen": 5, "rejected": "r"}] + [{"prompt": "p", "chosen": "c", "rejected": "r"}] * 3
    assert_same(write_jsonl(tmp_path / "odd.jsonl", rows))


def test_the_hostile_corpus_reads_the_same(tmp_path):
    from hostile.inputs import build

    _, files = build(tmp_path)
    checked = 0
    for path in files:
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 4 << 20:
            for on_error in ("skip", "raise"):
                assert_same(path, on_error)
            checked += 1
    assert checked >= 30


def test_normalise_is_nfkc_then_spaces():
    samples = ["", "  a  b ", "a\u00a0b", "\ufb01  x", "\t\n a \x0b\x0c\r b", "x\u3000\u2003y", "e\u0301",
               "\u00e9\u0301 ", "a \u0085 b", "\uff21 \uff22", None, " \u200b ", "a\x1fb", "\u2028a\u2029",
               "\u2460  \u2461", "it\u2019s \u201cx\u201d \u2013 y\u2026", "\u1100\u1161", "caf\u00e9", "\u2126 \u212b"]
    text = pl.Series(samples, dtype=pl.String)
    reference = text.str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars()
    assert pl.select(ids.normalise(pl.lit(text))).to_series().to_list() == reference.to_list()


def test_text_of_stable_characters_is_its_own_nfkc_form():
    stable = pl.Series([chr(n) for n in range(0x3000)]).filter(
        ~pl.Series([chr(n) for n in range(0x3000)]).str.contains(f"[^{ids._stable()}]"))
    assert stable.len() > 5000
    assert (stable.str.normalize("NFKC") == stable).all()  # Polars' NFKC, the reference, agrees one by one
    seconds = {chr(int(code, 16)) for n in range(0x110000) if (d := unicodedata.decomposition(chr(n)))
               and not d.startswith("<") for code in d.split()[1:]}
    assert not seconds & set(stable.to_list())  # and none of them composes with what comes before it


def test_the_table_vouches_for_every_hh_row_it_keeps(tmp_path, monkeypatch):
    """Only the rows the per-record path sets aside go through it: a rule that failed every row would still
    read the same, only slowly."""
    import prefdata.io.fast as fast

    path = write_jsonl(tmp_path / "hh.jsonl", hh_rows())
    seen, take = [], fast.take
    monkeypatch.setattr(fast, "take", lambda raw, *rest: (seen.append(raw.line), take(raw, *rest)))
    result = read_dataset(path, on_error="skip")
    assert result.frame.height > 0 and len(seen) == result.dropped.height


def test_ids_are_the_same_from_the_rust_hash_and_from_xxhash(monkeypatch):
    """prompt_id and pair_id through polars-hash (the `fast` extra, in `dev`) and through the xxhash loop (the
    fallback where the plugin is missing or fails to load): the same ids, on the shared HH-RLHF file and odd
    text (empty turns, emoji, combining marks, separators inside the text)."""
    if not ids._native():
        pytest.skip("polars-hash is not installed or does not load here: only the xxhash path can run")
    frame = read_dataset(Path(SHARED) / "hh-rlhf" / "harmless-base_test.jsonl.gz", on_error="skip").frame
    texts = ["", "😀", "e\u0301", "a\x1fb\x1ec", "ﬁ"]
    odd = pl.DataFrame({"prompt": [[{"role": "user", "content": t}] for t in texts]})

    def both(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(ids.prompt_id().alias("prompt_id"), ids.pair_id().alias("pair_id"))

    odd = odd.with_columns(chosen=pl.col("prompt"), rejected=pl.col("prompt"))
    native = [both(frame), both(odd)]
    monkeypatch.setattr(ids, "_native", lambda: False)
    loop = [both(frame), both(odd)]
    assert all(a.equals(b) for a, b in zip(native, loop)) and native[0].height == frame.height
