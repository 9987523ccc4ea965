"""A name that tells model weights apart, for request-cache keys: a local model's answers (or rewards) are
never served for another model's, even when both folders have the same name."""

from __future__ import annotations

from pathlib import Path


def weights_id(path: str | Path) -> str:
    """`FOLDER@HASH` for a local folder: its weight files (`*.safetensors`, `*.bin`) hashed with
    xxh3-128 (a few GB/s); a Hub id, or a folder without weight files, as it is."""
    import xxhash

    folder = Path(path)
    files = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin")) if folder.is_dir() else []
    if not files:
        return str(path)
    digest = xxhash.xxh3_128()
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 24):
                digest.update(block)
    return f"{folder.name}@{digest.hexdigest()[:16]}"
