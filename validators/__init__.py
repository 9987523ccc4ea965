"""Dataset checks, training pre-flight, the Great Expectations suite and the validation stamp.

Validators read data and report on it; they never call an LLM and never change the data.
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate", "validate_frame", "check_stamp"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import validators` (e.g. from the CLI's help) does not import Polars.
    if name in ("validate", "validate_frame"):
        from prefdata.validators import api

        return getattr(api, name)
    if name == "check_stamp":
        from prefdata.validators.stamp import check_stamp

        return check_stamp
    raise AttributeError(name)
