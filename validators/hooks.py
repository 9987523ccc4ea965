"""What prefdata's core asks of the validators, reached through the entry point `prefdata.extensions:validators`
(pyproject.toml; prefdata/extensions.py says why): the build's validate stage, the review page's per-row flags,
the stamp's path, and the `prefdata validate` command. Only typer is imported here: `prefdata --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefdata.validators.cli import validate as command  # the `prefdata validate` command's body

__all__ = ["command", "validate", "row_flags", "stamp_path"]


def validate(data: str | Path, **options: Any) -> Any:
    """`prefdata.validators.api.validate`: the catalogue over a dataset, and its stamp."""
    from prefdata.validators.api import validate as run

    return run(data, **options)


def row_flags(pairs: Any, kind: str, thresholds: Any) -> Any:
    """The catalogue's per-row flags of a canonical table (one boolean or text column per check)."""
    from prefdata.validators.gx_suite import row_flags as flags
    from prefdata.validators.inputs import Inputs

    return flags(Inputs(pairs, kind, thresholds))


def stamp_path(source: str | Path) -> Path:
    from prefdata.validators.stamp import stamp_path as path

    return path(source)
