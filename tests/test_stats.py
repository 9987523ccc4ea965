"""`prefdata stats --json` against figures this test computes on its own from the raw files."""

import json
import re
from statistics import mean

from conftest import DPO_DEMO, HH, KTO_DEMO, hh_rows, json_rows, run_cli

ROLE = {"human": "user", "gpt": "assistant", "system": "system", "observation": "tool", "function_call": "assistant"}


def stats(*args):
    done = run_cli("stats", *args, "--json", check=True)
    return json.loads(done.stdout)


def pair_figures(rows):
    """rows: (prompt turns, chosen text, rejected text) with turns as (role, content) tuples."""
    keys = [(tuple(p), c, r) for p, c, r in rows]
    return {
        "rows": len(rows),
        "distinct_prompts": len({k[0] for k in keys}),
        "exact_duplicate_rows": len(keys) - len(set(keys)),
        "identical_chosen_rejected": sum(c == r for _, c, r in rows),
        "chosen_longer_frac": round(sum(len(c) > len(r) for _, c, r in rows) / len(rows), 4),
        "mean_chars": {
            "prompt": round(mean(sum(len(t[1]) for t in p) for p, _, _ in rows), 3),
            "chosen": round(mean(len(c) for _, c, _ in rows), 3),
            "rejected": round(mean(len(r) for _, _, r in rows), 3),
        },
    }


def test_stats_sharegpt_demo():
    rows = [([(ROLE[m["from"]], m["value"]) for m in r["conversations"]], r["chosen"]["value"],
             r["rejected"]["value"]) for r in json_rows(DPO_DEMO)]
    got = stats(DPO_DEMO)
    assert (got["format"], got["kind"], got["rows_in"], got["dropped"]) == ("sharegpt", "pairwise", 300, {})
    assert {k: got[k] for k in pair_figures(rows)} == pair_figures(rows)
    assert got["exact_duplicate_rows"] > 0  # the demo really repeats rows


def test_stats_kto_demo():
    raw = json_rows(KTO_DEMO)
    got = stats(KTO_DEMO)
    prompts = [tuple((m["role"], m["content"]) for m in r["messages"][:-1]) for r in raw]
    keys = [(p, r["messages"][-1]["content"], r["label"]) for p, r in zip(prompts, raw)]
    assert got["kind"] == "unpaired" and got["rows"] == len(raw)
    assert got["label_true"] == sum(r["label"] for r in raw)
    assert got["label_false"] == sum(not r["label"] for r in raw)
    assert got["distinct_prompts"] == len(set(prompts))
    assert got["exact_duplicate_rows"] == len(keys) - len(set(keys))
    assert got["mean_chars"]["completion"] == round(mean(len(r["messages"][-1]["content"]) for r in raw), 3)


def test_stats_hh_rlhf_counts_what_it_set_aside():
    usable, mismatched, empty = [], 0, 0
    for row in hh_rows():
        turns = []
        for side in ("chosen", "rejected"):
            parts = re.split(r"\n\n(Human|Assistant): ?", row[side])
            turns.append([("user" if s == "Human" else "assistant", b) for s, b in zip(parts[1::2], parts[2::2])])
        chosen, rejected = turns
        if not chosen[-1][1].strip() or not rejected[-1][1].strip():
            empty += 1
        elif chosen[:-1] != rejected[:-1]:
            mismatched += 1
        else:
            usable.append((chosen[:-1], chosen[-1][1], rejected[-1][1]))
    got = stats(HH, "--on-error", "skip")
    assert got["format"] == "hh-rlhf" and got["rows_in"] == 2312
    assert got["dropped"] == {"empty_text": empty, "prompt_mismatch": mismatched}
    assert {k: got[k] for k in pair_figures(usable)} == pair_figures(usable)
    assert got["rows"] + sum(got["dropped"].values()) == got["rows_in"]


def test_stats_human_table_runs():
    done = run_cli("stats", DPO_DEMO)
    assert done.returncode == 0 and "distinct_prompts" in done.stdout
