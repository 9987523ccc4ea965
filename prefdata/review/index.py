"""What the review page shows, loaded once from a build folder or a dataset file.

Pairs are shown as the judges ordered them: in a folder where a review was applied, swapped pairs are swapped
back and pairs a person dropped come back from `dropped.parquet`, so that a decision always reads against
the judges' pair. Every other dropped row is listed with its stage and reason. `index` holds the light columns
the list filters on; texts stay in `pairs` (server memory, never sent whole to the browser).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from prefdata import schema, strict_json
from prefdata.curate.text import final_text
from prefdata.review import apply, log

SNIPPET = 140
CLIP = 100_000  # characters of one text sent to the page
# per-row flag (validators' row rules) -> the check in validation.json that counts it
CHECKS = {"role_problem": "schema", "blank": "empty_text", "identical": "chosen_differs",
          "exact_repeat": "exact_duplicates", "near_repeat": "near_duplicates", "encoding_problem": "encoding",
          "leaked": "split_leakage", "low_margin": "margin"}


@dataclass
class ReviewData:
    source: Path
    log: Path
    pairs: pl.DataFrame                 # canonical pairs (judges' orientation) with `row`, `split`, candidate ids
    dropped: pl.DataFrame               # other removed rows (schema.DROPPED) with `row`
    index: pl.DataFrame                 # one light row per listed item: what the filters read
    judgments: pl.DataFrame | None = None
    candidates: pl.DataFrame | None = None
    checks: dict[str, dict] = field(default_factory=dict)  # validation.json's checks by name
    decisions: dict[str, dict] = field(default_factory=dict)  # pair_id -> standing decision and notes
    flagging: str | None = None         # "running" while row flags are computed in the background, or its error


def load(source: str | Path, *, background: bool = False) -> ReviewData:
    """The page's data. Row flags (near duplicates across the whole set: seconds per 100k pairs) are computed
    before returning, or with `background` in a thread, so that a large set opens at once."""
    source = Path(source)
    folder = source.is_dir() and (source / "data.parquet").is_file()
    pairs, dropped = _folder(source) if folder else _file(source)
    judgments = _optional(source / "judgments.parquet") if folder else None
    candidates = _optional(source / "candidates.parquet") if folder else None
    if candidates is not None:
        pairs = apply.with_candidate_ids(pairs, candidates)
    stamp = _stamp(source)
    checks = {c.get("name"): c for c in stamp.get("checks", []) if isinstance(c, dict)}
    pairs = pairs.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    dropped = dropped.with_row_index("row", offset=pairs.height).with_columns(pl.col("row").cast(pl.Int64))
    index = pl.concat([_pair_index(pairs), _dropped_index(dropped)], how="diagonal_relaxed")
    data = ReviewData(source, log.log_path(source), pairs, dropped, index, judgments, candidates, checks)
    reload_decisions(data)
    minimum = ((stamp.get("settings") or {}).get("thresholds") or {}).get("min_margin")
    if background:
        data.flagging = "running"
        threading.Thread(target=_flag_rows, args=(data, minimum), daemon=True, name="review-flags").start()
    else:
        _flag_rows(data, minimum)
    return data


def _flag_rows(data: ReviewData, min_margin: float | None) -> None:
    """Put each pair's row flags in the index (one assignment: a request sees the old index or the new one)."""
    try:
        flags = pl.concat([_flags(data.pairs, min_margin),
                           pl.Series("flags", [[]] * data.dropped.height, dtype=pl.List(pl.String))])
        data.index = data.index.with_columns(flags.alias("flags"))
        data.flagging = None
    except Exception as exc:  # noqa: BLE001 - the page still works without flags, and says why
        data.flagging = f"row flags failed: {type(exc).__name__}: {exc}"


def reload_decisions(data: ReviewData) -> None:
    standing = log.current(log.read(data.log))
    data.decisions = {row["pair_id"]: row for row in standing.iter_rows(named=True)}


def _optional(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.is_file() else None


def _stamp(source: Path) -> dict:
    """The validation stamp beside the data ({} when there is none or it is unreadable: the page still opens)."""
    from prefdata.extensions import validators

    try:
        stamp = json.loads(validators().stamp_path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _folder(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A build folder: data.parquet (review undone) and the pairs a person dropped, then every other drop."""
    frame = _pairs_table(folder / "data.parquet")
    dropped = _optional(folder / "dropped.parquet")
    dropped = dropped if dropped is not None else schema.empty(schema.DROPPED)
    by_person = dropped.filter(pl.col("stage") == apply.STAGE)
    frame = pl.concat([apply.unswap(frame), _records(by_person, frame)], how="diagonal_relaxed")
    return frame.drop("review", strict=False), dropped.filter(pl.col("stage") != apply.STAGE)


def _pairs_table(path: Path) -> pl.DataFrame:
    """A build's data.parquet as the canonical pairs table, with the columns curation added (split, review).
    Written conversational by a build, it is taken as it is; another form goes through the reader."""
    from prefdata.io import read_dataset

    raw = pl.read_parquet(path)
    if all(raw.schema.get(c) == schema.MESSAGES for c in ("prompt", "chosen", "rejected")) and "pair_id" in raw.columns:
        return schema.conform(raw, schema.PAIRS)
    frame = read_dataset(path, on_error="skip").frame
    extras = [c for c in ("split", "review") if c in raw.columns and c not in frame.columns]
    return frame.with_columns(raw.select(extras)) if extras and raw.height == frame.height else frame


def _records(dropped: pl.DataFrame, like: pl.DataFrame) -> pl.DataFrame:
    """Pairs back from their JSON `record` in dropped.parquet (they left as whole rows of `like`)."""
    if dropped.height == 0:
        return like.clear()
    columns = {k: v for k, v in like.schema.items() if k != "review"}
    return dropped.select(pl.col("record").str.json_decode(pl.Struct(columns))).unnest("record")


def _file(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Any dataset file the reader takes; the rows it sets aside are listed with their reasons."""
    from prefdata.errors import InputError
    from prefdata.io import read_dataset

    result = read_dataset(path, on_error="skip")
    if result.kind != "pairwise":
        raise InputError(str(path), f"review needs preference pairs; this is {result.kind} data ({result.format})")
    return result.frame, result.dropped


def _snippet(column: str) -> pl.Expr:
    return final_text(column).str.slice(0, 4 * SNIPPET).str.replace_all(r"\s+", " ").str.slice(0, SNIPPET)


def _pair_index(pairs: pl.DataFrame) -> pl.DataFrame:
    chosen, rejected = (final_text(c).str.len_chars() for c in ("chosen", "rejected"))
    side = (pl.when(chosen > rejected).then(pl.lit("chosen")).when(chosen < rejected).then(pl.lit("rejected"))
            .otherwise(pl.lit("same")))
    split = pl.col("split") if "split" in pairs.columns else pl.lit(None, dtype=pl.String)
    index = pairs.select("row", "pair_id", pl.lit("pair").alias("kind"), _snippet("prompt").alias("snippet"),
                         "margin", "agreement", "confidence", split.alias("split"), side.alias("side"),
                         pl.lit(None, dtype=pl.String).alias("stage"), pl.lit(None, dtype=pl.String).alias("reason"))
    return index.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("flags"))  # until _flag_rows


def _flags(pairs: pl.DataFrame, min_margin: float | None) -> pl.Series:
    """The validators' per-row flags of each pair, as a list of flag names."""
    from prefdata.extensions import validators
    from prefdata.thresholds import Thresholds

    if pairs.height == 0:
        return pl.Series("flags", [], dtype=pl.List(pl.String))
    limits = Thresholds(min_margin=min_margin if isinstance(min_margin, (int, float)) else None)
    flags = validators().row_flags(pairs.select(list(schema.PAIRS)), "pairwise", limits)
    low = pl.col("margin") < limits.min_margin if limits.min_margin is not None else pl.col("margin") <= 0
    named = [pl.when(pl.col(name).is_not_null() if flags.schema[name] == pl.String  # a text naming the problem
                     else pl.col(name).fill_null(False)).then(pl.lit(name)) for name in CHECKS if name in flags.columns]
    named.append(pl.when(low.fill_null(False)).then(pl.lit("low_margin")))
    return flags.select(pl.concat_list(named).list.drop_nulls().alias("flags"))["flags"]


def _dropped_index(dropped: pl.DataFrame) -> pl.DataFrame:
    record = pl.col("record").str.json_path_match("$.prompt_id")
    return dropped.select("row", pl.col("row_id").alias("pair_id"), pl.lit("dropped").alias("kind"),
                          pl.coalesce(pl.col("detail").str.replace(r"^.*?:\d+: ", ""), record)  # not the file path
                          .str.slice(0, SNIPPET).alias("snippet"),
                          "stage", "reason", pl.lit([], dtype=pl.List(pl.String)).alias("flags"))


def view(data: ReviewData, row: int) -> dict | None:
    """Everything the pair view shows for one listed row; None when there is no such row."""
    if not 0 <= row < data.index.height:
        return None
    item = data.index.row(row, named=True)
    if item["kind"] == "dropped":
        return {**item, **_dropped_view(data, data.dropped.filter(pl.col("row") == row).row(0, named=True))}
    pair = data.pairs.filter(pl.col("row") == row).row(0, named=True)
    shown = {k: pair.get(k) for k in ("chosen_score", "rejected_score", "margin", "agreement", "confidence", "judges",
                                      "source")}
    return {**item, "pair": {**shown, **{k: _clipped_turns(pair.get(k)) for k in ("prompt", "chosen", "rejected")}},
            "checks": [_check(data, flag) for flag in item["flags"]],
            "verdicts": _verdicts(data, pair.get("prompt_id"), pair.get("chosen_id"), pair.get("rejected_id")),
            "decision": data.decisions.get(item["pair_id"])}


def _check(data: ReviewData, flag: str) -> dict:
    name = CHECKS.get(flag, flag)
    check = data.checks.get(name) or {}
    return {"flag": flag, "check": name, "passed": check.get("passed"), "message": check.get("message")}


def _verdicts(data: ReviewData, prompt_id: str | None, first: str | None, second: str | None,
              names: tuple[str, str] = ("chosen", "rejected")) -> list[dict]:
    """Each judge's verdict on the answers `first` and `second` (candidate ids) in each order, told by their
    `names` (chosen/rejected) rather than by the position (a/b) each had in that order."""
    if data.judgments is None or first is None or second is None:
        return []
    side = {first: names[0], second: names[1]}
    rows = data.judgments.filter((pl.col("prompt_id") == prompt_id) & pl.col("a_id").is_in(list(side))
                                 & pl.col("b_id").is_in(list(side))).sort("judge", "order", nulls_last=True)
    out = []
    for j in rows.iter_rows(named=True):
        picked = {"a": side.get(j["a_id"]), "b": side.get(j["b_id"]), "tie": "tie"}.get(j["winner"] or "")
        # winner and scores are already de-swapped; a pointwise judge (no order) saw each answer alone
        shown_first = {"ab": j["a_id"], "ba": j["b_id"]}.get(j["order"])
        out.append({"judge": j["judge"], "order": j["order"], "first": side.get(shown_first), "winner": picked,
                    "scores": {side.get(j["a_id"]): j["score_a"], side.get(j["b_id"]): j["score_b"]},
                    "rationale": _clip(j["rationale"]), "raw": _clip(j["raw"]), "parse_ok": j["parse_ok"],
                    "error": _clip(j["error"]),
                    "confidence": j.get("confidence")})
    return out


def _turns(value: object, role: str) -> list[dict]:
    """A record's field as turns to show: a plain string is one turn; anything else is shown as its JSON."""
    if isinstance(value, list) and all(isinstance(t, dict) for t in value):
        return [{"role": str(t.get("role", "?")), "content": _clip(t.get("content"))} for t in value]
    return [{"role": role, "content": _clip(value)}]


def _clip(value: object) -> str | None:
    """Text for the page, at most CLIP characters: a 50 MB answer is shown by its head, and says so."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= CLIP:
        return text
    return text[:CLIP] + f"\n… ({len(text) - CLIP:,} more characters not shown)"


def _clipped_turns(turns: list[dict] | None) -> list[dict] | None:
    return None if turns is None else [{**t, "content": _clip(t.get("content"))} for t in turns]


def _dropped_view(data: ReviewData, dropped: dict) -> dict:
    """A removed row: its stage, reason and record; a comparison the panel could not decide also shows both
    answers and the judges' verdicts."""
    try:  # a record the reader refused may be 100,000 brackets deep: bounded, strict parsing
        record = strict_json.loads(dropped["record"] or "null")
        record = record if strict_json.check(record) is None else None
    except ValueError:
        record = None
    out = {"detail": dropped["detail"], "record": _clip(dropped["record"] or "")}
    if isinstance(record, dict) and {"prompt", "chosen", "rejected"} <= record.keys():
        out["pair"] = {k: _turns(record[k], "user" if k == "prompt" else "assistant")
                       for k in ("prompt", "chosen", "rejected")}
    elif isinstance(record, dict) and data.candidates is not None and record.get("a_id") and record.get("b_id"):
        texts = dict(data.candidates.filter(pl.col("candidate_id").is_in([record["a_id"], record["b_id"]]))
                     .select("candidate_id", "response").iter_rows())
        out["answers"] = {side: _clip(texts.get(record[f"{side}_id"])) for side in ("a", "b")}
        out["verdicts"] = _verdicts(data, record.get("prompt_id"), record["a_id"], record["b_id"], ("a", "b"))
    return out


FILTERS = ("show", "split", "disagree", "max_margin", "max_confidence", "side", "flag", "reason", "decision")


def query(data: ReviewData, filters: dict[str, str], offset: int, limit: int) -> tuple[int, list[dict]]:
    """(how many listed rows pass `filters`, the page of them from `offset`), with each pair's decision."""
    decided = pl.DataFrame([{"pair_id": k, "decision": v["decision"], "note": v["note"]}
                            for k, v in data.decisions.items()],
                           schema={"pair_id": pl.String, "decision": pl.String, "note": pl.String})
    rows = (data.index.lazy().join(decided.lazy(), on="pair_id", how="left", maintain_order="left")
            .filter(_predicate(filters)))
    total = rows.select(pl.len()).collect().item()
    page = rows.slice(offset, limit).collect()
    return total, page.to_dicts()


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and number == number and abs(number) != float("inf") else None


def _predicate(f: dict[str, str]) -> pl.Expr:
    show = f.get("show") or "pairs"
    rule = pl.lit(True) if show == "all" else pl.col("kind") == ("dropped" if show == "dropped" else "pair")
    if f.get("split"):
        rule &= pl.col("split") == f["split"]
    if f.get("disagree"):
        rule &= pl.col("agreement") < 1
    if (margin := _number(f.get("max_margin"))) is not None:
        rule &= pl.col("margin") <= margin
    if (confidence := _number(f.get("max_confidence"))) is not None:
        rule &= pl.col("confidence") <= confidence
    if f.get("side"):
        rule &= pl.col("side") == f["side"]
    if f.get("flag"):
        rule &= pl.col("flags").list.contains(f["flag"])
    if f.get("reason"):
        rule &= pl.col("reason") == f["reason"]
    decision = f.get("decision")
    if decision == "none":
        rule &= pl.col("decision").is_null()
    elif decision == "any":
        rule &= pl.col("decision").is_not_null()
    elif decision:
        rule &= pl.col("decision") == decision
    return rule.fill_null(False)


def meta(data: ReviewData) -> dict:
    """What the filters can offer, and the counts the header shows."""
    pairs = data.index.filter(pl.col("kind") == "pair")
    decided = [v["decision"] for v in data.decisions.values() if v["decision"]]
    return {"source": str(data.source), "log": str(data.log), "pairs": pairs.height,
            "dropped": data.dropped.height,
            "splits": sorted(s for s in pairs["split"].unique().to_list() if s is not None),
            "flags": sorted(set(pairs["flags"].explode().drop_nulls().to_list())),
            "reasons": dict(sorted(data.dropped.group_by("reason").len().iter_rows())),
            "decided": {d: decided.count(d) for d in log.DECIDING}, "judged": data.judgments is not None,
            "flagging": data.flagging}
