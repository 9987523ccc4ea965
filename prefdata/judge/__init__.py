"""Judging: prompts, JSON-safe verdict parsing, pairwise and pointwise judges, the panel, agreement."""

from prefdata.judge.parsing import Score, Verdict, parse_score, parse_verdict

__all__ = ["Score", "Verdict", "parse_score", "parse_verdict"]
