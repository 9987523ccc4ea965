"""The catalogue as a Great Expectations suite, run in an ephemeral GX context, with Data Docs written
next to the dataset. great_expectations (and pandas) are imported only here, only with `--gx`.

Two batches: `rows` holds the per-row flags of `validators.rows` (so Data Docs show offending rows),
and `figures` one row per aggregate figure of the report (length bias, judge rates, diversity,
pre-flight lengths), each held to the catalogue's threshold by a `row_condition` on its name.
Every expectation carries its check's name and severity (error -> critical, warning -> warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from prefdata.validators import rows
from prefdata.validators.catalogue import CATALOGUE
from prefdata.validators.inputs import Inputs, joined_text
from prefdata.validators.result import Report

SUITE = "prefdata-validate"
SITE = "prefdata"
GX_SEVERITY = {"error": "critical", "warning": "warning"}
DESCRIPTIONS = {c.name: c.description for c in CATALOGUE}


def row_flags(inp: Inputs) -> pl.DataFrame:
    """The per-row flags the row-level checks count, one row per dataset row."""
    t = inp.thresholds
    columns: dict[str, pl.Expr] = {
        "prompt": joined_text("prompt").str.slice(0, 120),
        "role_problem": rows.role_problem(inp),
        "blank": rows.blank(inp),
        "identical": rows.identical(inp),
        "exact_repeat": rows.exact_repeat(inp),
        "encoding_problem": rows.encoding_problem(inp),
        "leaked": rows.leaked(inp),
    }
    frame = inp.frame.lazy().with_row_index("row", offset=1).select("row", **columns).collect()
    near = rows.near_repeat(inp.frame.select(rows.row_text(inp))[:, 0], t.near_duplicate_threshold)
    frame = frame.with_columns(near.alias("near_repeat"))
    if "margin" in inp.frame.columns:
        frame = frame.with_columns(inp.frame["margin"])
    if inp.kind == "unpaired":
        frame = frame.with_columns(inp.frame["label"].cast(pl.Int8).alias("label"))
    return frame


def _figures(report: Report) -> list[tuple[str, str, float, float | None, float | None]]:
    """(name, severity, value, min, max) for every aggregate figure, bounds from the report's thresholds."""
    t = report.settings["thresholds"]
    out = []

    def add(name: str, value: Any, low: float | None = None, high: float | None = None) -> None:
        check = next((c for c in report.checks if c.name == name.split(".")[0] and not c.skipped), None)
        if check is not None and value is not None:
            out.append((name, check.severity, float(value), low, high))

    by = {c.name: c for c in report.checks}
    if "schema" in by:
        add("schema.unreadable", sum(by["schema"].figures.get("unreadable", {}).values()), None, 0)
    if "empty_text" in by:
        add("empty_text", by["empty_text"].value, None, 0)
    if "length_bias" in by:
        add("length_bias", by["length_bias"].value, t["min_chosen_longer"], t["max_chosen_longer"])
        corr = by["length_bias"].figures.get("correlation")
        add("length_bias.correlation", None if corr is None else abs(corr), None, t["max_length_correlation"])
    for name, low, high in (
        ("judge_parse_failures", None, t["max_parse_failure_rate"]),
        ("judge_position_consistency", t["min_position_consistency"], None),
        ("prompt_distinct_ngrams", t["min_distinct_ngram_ratio"], None),
        ("prompt_near_duplicates", None, t["max_prompt_near_duplicate_rate"]),
        ("prompt_categories", None, t["max_category_share"]),
        ("prompt_prefix", None, 0),
        ("token_lengths", None, t["max_length"]),
        ("truncation", None, t["max_truncated_share"]),
    ):
        if name in by:
            add(name, by[name].value, low, high)
    for name in ("chat_template", "special_tokens"):
        if name in by:
            add(name, 1.0 if by[name].passed else 0.0, 1, None)
    return out


def _row_expectations(inp: Inputs, gxe: Any, present: set[str]) -> list[tuple[str, Any]]:
    t = inp.thresholds
    out: list[tuple[str, Any]] = [
        ("schema", gxe.ExpectColumnValuesToBeNull(column="role_problem")),
        ("empty_text", gxe.ExpectColumnValuesToBeInSet(column="blank", value_set=[False])),
        ("exact_duplicates", gxe.ExpectColumnValuesToBeInSet(column="exact_repeat", value_set=[False],
                                                             mostly=1 - t.max_exact_duplicate_rate)),
        ("near_duplicates", gxe.ExpectColumnValuesToBeInSet(column="near_repeat", value_set=[False],
                                                            mostly=1 - t.max_near_duplicate_rate)),
        ("encoding", gxe.ExpectColumnValuesToBeNull(column="encoding_problem",
                                                    mostly=1 - t.max_encoding_problem_share)),
        ("rows", gxe.ExpectTableRowCountToBeBetween(min_value=t.required_rows)),
        ("size", gxe.ExpectTableRowCountToBeBetween(min_value=t.min_pairs)),
    ]
    if inp.kind == "pairwise":
        out.append(("chosen_differs", gxe.ExpectColumnValuesToBeInSet(column="identical", value_set=[False])))
    if "split_leakage" in present:
        out.append(("split_leakage", gxe.ExpectColumnValuesToBeInSet(column="leaked", value_set=[False])))
    if "margin" in present:  # nulls (unscored pairs) are not counted by GX, as by the check
        bound = {"min_value": t.min_margin} if t.min_margin is not None else {"min_value": 0, "strict_min": True}
        out.append(("margin", gxe.ExpectColumnValuesToBeBetween(column="margin", mostly=1 - t.max_low_margin_share,
                                                                **bound)))
    if inp.kind == "unpaired":
        out.append(("kto_label_balance", gxe.ExpectColumnMeanToBeBetween(
            column="label", min_value=t.min_label_share, max_value=1 - t.min_label_share)))
    return out


def _site(base: Path) -> dict[str, Any]:
    return {"class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base)}}


def run_suite(inp: Inputs, report: Report, docs: Path) -> dict[str, Any]:
    """Run the suite over `inp` and write Data Docs under `docs`; returns success, the index page and
    the failed expectations."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    docs = docs.resolve()  # GX's file store takes absolute paths only
    docs.mkdir(parents=True, exist_ok=True)
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False,
                               progress_bars=ProgressBarsConfig(globally=False), data_docs_sites={SITE: _site(docs)})
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas("prefdata")
    by_name = {c.name: c for c in report.checks}
    present = {c.name for c in report.checks if not c.skipped}

    runs = []
    flags = row_flags(inp)
    row_suite = _suite(gx, context, f"{SUITE}-rows", _row_expectations(inp, gxe, present), by_name)
    runs.append(_run(gx, context, source, "rows", row_suite, flags.to_pandas()))
    figures = _figures(report)
    if figures:
        table = pl.DataFrame([{"name": n, "value": v} for n, _, v, _, _ in figures])
        expectations = []
        for name, _, _, low, high in figures:
            expectations.append((name, gxe.ExpectColumnValuesToBeBetween(
                column="value", min_value=low, max_value=high, row_condition=Column("name") == name)))
        figure_suite = _suite(gx, context, f"{SUITE}-figures", expectations, by_name)
        runs.append(_run(gx, context, source, "figures", figure_suite, table.to_pandas()))
    pages = context.build_data_docs(site_names=[SITE])
    _label_status_icons(docs)
    results = [{"check": r.expectation_config.meta.get("check"), "expectation": r.expectation_config.type,
                "severity": r.expectation_config.meta.get("severity"), "success": bool(r.success)}
               for run in runs for r in run.results]
    failed = [r for r in results if not r["success"]]
    return {"success": not any(r["severity"] == "error" for r in failed), "all_met": not failed,
            "index": str(docs / "index.html"), "url": pages.get(SITE), "expectations": len(results),
            "failed": [r["check"] for r in failed], "results": results}


# Data Docs draw pass/fail as Font Awesome icons from a CDN: offline (where datasets often are) the
# status column is blank. A text label after each icon keeps the verdict readable without the CDN.
STATUS_ICONS = {
    '<i class="fas fa-check-circle text-success" ></i>': '<b style="color:#1a7f37"> met</b>',
    '<i class="fas fa-times text-danger" ></i>': '<b style="color:#cf222e"> not met</b>',
}


def _label_status_icons(docs: Path) -> None:
    for page in docs.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        labelled = html
        for icon, label in STATUS_ICONS.items():
            labelled = labelled.replace(icon, icon + label)
        if labelled != html:
            page.write_text(labelled, encoding="utf-8")


def _suite(gx: Any, context: Any, name: str, expectations: list[tuple[str, Any]], by_name: dict) -> Any:
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for check, expectation in expectations:
        base = check.split(".")[0]
        severity = by_name[base].severity if base in by_name else "warning"
        expectation.meta = {"check": check, "severity": severity}
        expectation.severity = GX_SEVERITY[severity]
        threshold = by_name[base].threshold if base in by_name else None
        limit = f", {threshold}" if threshold not in (None, "") and base == check else ""
        expectation.description = f"{check} ({severity}{limit}): {DESCRIPTIONS.get(base, base.replace('_', ' '))}"
        suite.add_expectation(expectation)
    return suite


def _run(gx: Any, context: Any, source: Any, asset_name: str, suite: Any, frame: Any) -> Any:
    batch = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe(asset_name)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{SUITE}-{asset_name}", data=batch, suite=suite))
    # Name offending rows by their 1-based `row` (or the figure's `name`), so Data Docs point at them.
    index = "row" if "row" in frame.columns else "name"
    return definition.run(batch_parameters={"dataframe": frame},
                          result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [index],
                                         "partial_unexpected_count": 10})
