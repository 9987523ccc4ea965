"""Judging: prompts, JSON-safe verdict parsing, pairwise comparison."""

from prefdata.judge.parsing import Verdict, parse_verdict

__all__ = ["Verdict", "parse_verdict"]
