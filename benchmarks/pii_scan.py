"""Benchmark: PII detection on the shared data (every turn of prompt, chosen and rejected of HH-RLHF
harmless-base test and LLaMA-Factory dpo_en_demo).

Engines: presidio-analyzer's pattern recognizers as prefdata calls them (e-mail, phone, credit card, IBAN, IP;
texts without `@`, `:` or a digit skipped; phone and card numbers kept when written as one or after a context
word), the same on every text (what the pre-filter saves), presidio's recognizers without that rule, and
scrubadub 2.0's default detectors (`pip install scrubadub`). With PII_SPACY_MODEL set to a spaCy English model
(a package name or a folder), also that model's NER for names (PERSON), which is what presidio's SpacyRecognizer
reports. Figures per engine: texts/s, wall and CPU seconds, spans per entity type, examples; then where presidio
and scrubadub agree on e-mail, phone and card spans.

    python benchmarks/pii_scan.py [--examples 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl

from prefdata.curate.config import PII_ENTITIES
from prefdata.curate.pii import CANDIDATE, Unscanned, _recognizers, scan
from prefdata.io import read_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = [SHARED / "hh-rlhf" / "harmless-base_test.jsonl.gz", SHARED / "llamafactory" / "dpo_en_demo.json"]
SAME = {"email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER", "credit_card": "CREDIT_CARD"}  # scrubadub -> presidio


def texts() -> list[str]:
    found = []
    for path in FILES:
        frame = read_dataset(path, on_error="skip").frame
        for field in ("prompt", "chosen", "rejected"):
            found += frame.select(pl.col(field).list.eval(pl.element().struct.field("content"))).explode(field)[
                field].drop_nulls().to_list()
    return found


def timed(run, items):
    wall, cpu = time.perf_counter(), time.process_time()
    out = run(items)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def presidio(items: list[str], prefilter: bool = True) -> list[tuple[int, int, int, str]]:
    pattern = re.compile(CANDIDATE)
    spans = []
    for i, text in enumerate(items):
        if prefilter and not pattern.search(text):
            continue
        try:
            spans += [(i, s.start, s.end, s.entity) for s in scan(text, PII_ENTITIES)]
        except Unscanned:
            pass
    return spans


def presidio_raw(items: list[str]) -> list[tuple[int, int, int, str]]:
    """presidio's recognizers without prefdata's shape-or-context rule for phone and card numbers."""
    recognizers = _recognizers()
    return [(i, r.start, r.end, r.entity_type) for i, text in enumerate(items)
            for entity in PII_ENTITIES for r in recognizers[entity].analyze(text, [entity], None) if r.score >= 0.3]


def scrubadub_all(items: list[str]) -> list[tuple[int, int, int, str]]:
    import scrubadub

    scrubber = scrubadub.Scrubber()
    return [(i, f.beg, f.end, f.type) for i, text in enumerate(items) for f in scrubber.iter_filth(text)]


def spacy_names(model: str):
    import spacy

    nlp = spacy.load(model, disable=["parser", "lemmatizer", "tagger", "attribute_ruler"])

    def run(items: list[str]) -> list[tuple[int, int, int, str]]:
        return [(i, e.start_char, e.end_char, "PERSON") for i, doc in enumerate(nlp.pipe(items, batch_size=64))
                for e in doc.ents if e.label_ == "PERSON"]
    return run


def shown(items: list[str], span: tuple[int, int, int, str], context: int = 30) -> str:
    i, start, end, kind = span
    text = items[i]
    return (f"{kind}: {text[max(0, start - context):start]!r} [[{text[start:end]}]] "
            f"{text[end:end + context]!r}").replace("\n", " ")


def overlap(a: list, b: list) -> tuple[int, int, int, list, list]:
    """Spans of a and b on the same entity type that overlap: (both, a only, b only, a-only list, b-only list)."""
    by_text = defaultdict(list)
    for span in b:
        by_text[span[0]].append(span)
    matched_b, both, a_only = set(), 0, []
    for span in a:
        hits = [o for o in by_text[span[0]] if o[3] == span[3] and o[1] < span[2] and span[1] < o[2]]
        if hits:
            both += 1
            matched_b.update(hits)
        else:
            a_only.append(span)
    b_only = [s for s in b if s not in matched_b]
    return both, len(a_only), len(b_only), a_only, b_only


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=5)
    args = parser.parse_args()
    items = texts()
    print(f"{len(items)} texts, {sum(map(len, items)):,} characters (HH-RLHF harmless-base test, "
          f"LLaMA-Factory dpo_en_demo: every turn of prompt, chosen, rejected)")
    _, wall, cpu = timed(lambda _: _recognizers(), None)
    print(f"presidio import and recognizers: {wall:.1f} s wall, {cpu:.1f} s CPU")
    routes = {"presidio patterns (prefdata)": presidio,
              "presidio patterns, no pre-filter": lambda x: presidio(x, prefilter=False),
              "presidio recognizers alone (no shape rule)": presidio_raw,
              "scrubadub defaults": scrubadub_all}
    if os.environ.get("PII_SPACY_MODEL"):
        routes["spaCy NER PERSON"] = spacy_names(os.environ["PII_SPACY_MODEL"])
    found, summary = {}, {}
    for name, run in routes.items():
        run(items[:20])  # imports and models loaded before the clock
        spans, wall, cpu = timed(run, items)
        found[name] = spans
        counts = Counter(s[3] for s in spans)
        summary[name] = {"texts_per_s": round(len(items) / wall), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "spans": dict(counts.most_common())}
        print(f"\n== {name}: {len(items) / wall:,.0f} texts/s, {wall:.1f} s wall, {cpu:.1f} s CPU")
        for kind, n in counts.most_common():
            print(f"  {kind}: {n} spans in {len({s[0] for s in spans if s[3] == kind})} texts")
            for span in [s for s in spans if s[3] == kind][:args.examples]:
                print("    " + shown(items, span))
    ours = found["presidio patterns (prefdata)"]
    theirs = [(i, a, b, SAME[k]) for i, a, b, k in found["scrubadub defaults"] if k in SAME]
    both, p_only, s_only, p_list, s_list = overlap(ours, theirs)
    summary["overlap"] = {"both": both, "presidio_only": p_only, "scrubadub_only": s_only}
    print(f"\n== e-mail, phone, card found by both: {both}; presidio only: {p_only}; scrubadub only: {s_only}")
    for span in p_list[:args.examples]:
        print("  presidio only " + shown(items, span))
    for span in s_list[:args.examples]:
        print("  scrubadub only " + shown(items, span))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
