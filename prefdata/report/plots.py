"""PNG plots for the dataset card: score margins, length differences, and the length-bias figure.

matplotlib (the `report` extra) is imported here only; without it the card says how to get plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

PLOTS = {
    "margins.png": "Histogram of score margins (chosen minus rejected)",
    "length_diff.png": "Histogram of length differences (chosen minus rejected, characters)",
    "length_bias.png": "Share of pairs whose chosen answer is longer, by size of the length difference",
}


def _lengths(data: pl.DataFrame) -> np.ndarray:
    final = lambda c: pl.col(c).list.last().struct.field("content").str.len_chars().cast(pl.Int64)  # noqa: E731
    return data.select((final("chosen") - final("rejected")).alias("d"))["d"].to_numpy().astype(float)


def _figure(plt, title: str, xlabel: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _margins(plt, data: pl.DataFrame, path: Path) -> None:
    margins = data["margin"].drop_nulls().to_numpy()
    fig, ax = _figure(plt, f"Score margins ({len(margins)} scored pairs)", "margin (chosen - rejected score)",
                      "pairs")
    if len(margins):
        ax.hist(margins, bins=min(30, max(5, len(margins) // 3)), color="#4C72B0", edgecolor="white")
        ax.axvline(float(np.median(margins)), color="#C44E52", linestyle="--", label="median")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no scores in this dataset", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _length_diff(plt, diff: np.ndarray, path: Path) -> None:
    longer = float((diff > 0).mean()) if len(diff) else 0.0
    fig, ax = _figure(plt, f"Length differences: chosen longer in {longer:.0%} of {len(diff)} pairs",
                      "chosen - rejected (characters; tails clipped at the 98th percentile)", "pairs")
    if len(diff):
        clip = np.percentile(np.abs(diff), 98) or 1.0
        ax.hist(np.clip(diff, -clip, clip), bins=40, color="#55A868", edgecolor="white")
        ax.axvline(0, color="black", linewidth=1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _length_bias(plt, diff: np.ndarray, path: Path) -> None:
    longer = int((diff > 0).sum())
    fig, ax = _figure(plt, f"Length bias: chosen is the longer answer in {longer} of {len(diff)} pairs",
                      "|length difference| (characters), quintile", "share of pairs, chosen longer")
    untied = diff[diff != 0]
    if len(untied) >= 5:
        size = np.abs(untied)
        edges = np.unique(np.quantile(size, np.linspace(0, 1, 6)))
        bins = np.clip(np.searchsorted(edges, size, side="right") - 1, 0, len(edges) - 2)
        filled = [b for b in range(len(edges) - 1) if (bins == b).any()]  # tied sizes can leave a bin empty
        shares = [float((untied[bins == b] > 0).mean()) for b in filled]
        labels = [f"{int(edges[b])}-{int(edges[b + 1])}" for b in filled]
        ax.bar(labels, shares, color="#8172B2")
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", labelsize=8)
    else:
        ax.text(0.5, 0.7, f"too few pairs of different lengths ({len(untied)}) to bin;\n"
                f"the chosen answer is the longer one in {longer} of {len(diff)}", ha="center", va="center",
                transform=ax.transAxes)
    ax.axhline(0.5, color="#C44E52", linestyle="--", label="no bias (50%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plots(data: pl.DataFrame, folder: Path) -> list[str]:
    """Write the card's plots into `folder`; returns their file names ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    diff = _lengths(data)
    _margins(plt, data, folder / "margins.png")
    _length_diff(plt, diff, folder / "length_diff.png")
    _length_bias(plt, diff, folder / "length_bias.png")
    return list(PLOTS)
