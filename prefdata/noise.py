"""What the libraries print, kept off the terminal unless `--verbose`.

tqdm bars of transformers (model loading, GGUF conversion, shard writing) and datasets (`save_to_disk`),
and the libraries' deprecation notes, tell a user of `prefdata` or `align` nothing they can act on. The
switches are environment variables read when those libraries are imported (inside the commands, after
the CLI's root callback ran); a value the user set already wins.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",       # transformers' bars (Loading weights, Writing model shards)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' bars (Saving the dataset, Map, Filter)
    "TQDM_DISABLE": "1",                       # bare tqdm bars (transformers' GGUF de-quantisation)
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
LIBRARIES = r"(transformers|trl|peft|accelerate|datasets|huggingface_hub)(\..*)?"
_state = {"verbose": False}


def verbose() -> bool:
    return _state["verbose"]


def configure(verbose: bool = False) -> None:
    """Called once by the CLIs: quiet the libraries, or (verbose) leave everything as the libraries do."""
    _state["verbose"] = verbose
    if verbose:
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=LIBRARIES)


@contextmanager
def datasets_bars_off() -> Iterator[None]:
    """datasets' progress bars off around a call (unless verbose), restored after: a notebook keeps its setting."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    turn_off = not verbose() and not are_progress_bars_disabled()
    if turn_off:
        disable_progress_bars()
    try:
        yield
    finally:
        if turn_off:
            enable_progress_bars()
