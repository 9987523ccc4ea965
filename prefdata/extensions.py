"""The packages built on prefdata's core, as the core reaches them: through entry points, never an import.

DESIGN.md: dependencies run one way; `validators` and `align` use the core, and the core uses neither. Yet a
build ends with validation, the review page shows the validators' per-row flags, and `prefdata validate` is a
command of the `prefdata` CLI. The core finds that work under the entry point group `prefdata.extensions`
(pyproject.toml names `validators = prefdata.validators.hooks`), so the core's module graph has no edge into
validators (tests/test_import_graph.py checks it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from prefdata.errors import PrefdataError

GROUP = "prefdata.extensions"


@cache
def extension(name: str) -> Any:
    """The module an installed package registered as `name` in the group (the validators: `validators`)."""
    from importlib.metadata import entry_points

    found = entry_points(group=GROUP, name=name)
    if not found:
        raise PrefdataError(f"prefdata's {name} are not installed (no entry point {GROUP}:{name}): reinstall "
                            "prefdata, e.g. pip install -e .")
    return next(iter(found)).load()


def validators() -> Any:
    """validate, row_flags, stamp_path and the `prefdata validate` command (prefdata/validators/hooks.py)."""
    return extension("validators")
