"""PNG plots for the report: confusion matrix, t-SNE, image grids, accuracy by pose subset.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg
canvas directly, never through ``pyplot``: no global figure registry, no backend
switch, nothing left open after a call. Each function writes its PNG atomically
and returns the path.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facefactors.checkpoint import atomic_write_bytes
from facefactors.errors import DataError
from facefactors.evaluation.metrics import as_label_array
from facefactors.imaging import to_hwc_uint8


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # attaches the Agg canvas to the figure
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Row-normalised confusion matrix with the raw counts written in each cell.

    Args:
        cm: counts, shape (K, K), rows = true class, columns = predicted class.
        class_names: K class names, in index order.
        path: destination PNG.
        title: optional figure title.
    """
    counts = np.asarray(cm, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise DataError(f"Confusion matrix has shape {counts.shape} but there are {k} class names.")
    support = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    fig = _new_figure(1.0 + 0.7 * k, 0.6 + 0.6 * k)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    for i in range(k):
        for j in range(k):
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def tsne_embed(feats: Any, seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """Embed features in 2-D with t-SNE (PCA init, fixed seed).

    Args:
        feats: features, shape (N, D), N >= 3.
        seed: random state of t-SNE.
        perplexity: by default min(30, (N - 1) / 3), since t-SNE needs perplexity < N
            and the usual 30 is too large for the small sets of a quick run.

    Returns:
        Coordinates, shape (N, 2).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(feats.detach().float().cpu() if hasattr(feats, "detach") else feats)
    x = x.astype(np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise DataError(f"t-SNE needs a (N, D) feature matrix with N >= 3, got shape {x.shape}.")
    if perplexity is None:
        perplexity = max(1.0, min(30.0, (x.shape[0] - 1) / 3.0))
    if not 0 < perplexity < x.shape[0]:
        raise DataError(f"t-SNE perplexity must lie in (0, {x.shape[0]}), got {perplexity}.")
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
    # Single-threaded: on a few shared cores, thread hand-off made a 60-point t-SNE
    # 5-40x slower (measured).
    with threadpool_limits(limits=1):
        return tsne.fit_transform(x)


def plot_tsne(
    feats: Any,
    labels: Any,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    identities: Any = None,
    seed: int = 0,
    perplexity: float | None = None,
    title: str | None = None,
) -> Path:
    """t-SNE scatter of features coloured by class, as in the paper's Fig. 10.

    Args:
        feats: features (e.g. f_exp), shape (N, D).
        labels: class of each sample, shape (N,), colours the points.
        path: destination PNG.
        class_names: names for the legend; class indices are used if omitted.
        identities: optional identity id of each sample, shape (N,), written next to
            each point (the paper's "marked numbers represent identity ID").
        seed: random state of t-SNE.
        perplexity: see :func:`tsne_embed`.
        title: optional figure title.
    """
    y = as_label_array(labels, "labels")
    xy = tsne_embed(feats, seed=seed, perplexity=perplexity)
    if xy.shape[0] != y.size:
        raise DataError(f"t-SNE got {xy.shape[0]} feature rows but {y.size} labels.")
    ids = None if identities is None else as_label_array(identities, "identities")
    if ids is not None and ids.size != y.size:
        raise DataError(f"t-SNE got {ids.size} identities but {y.size} labels.")
    from matplotlib import colormaps

    cmap = colormaps["tab10" if y.max() < 10 else "tab20"]
    fig = _new_figure(6.0, 5.0)
    ax = fig.subplots()
    for c in np.unique(y):
        m = y == c
        name = class_names[c] if class_names is not None and c < len(class_names) else str(c)
        ax.scatter(xy[m, 0], xy[m, 1], s=14, color=cmap(int(c) % cmap.N), label=name)
    if ids is not None:
        for (px, py), i in zip(xy, ids):
            ax.annotate(
                str(i), (px, py), fontsize=5, alpha=0.7, xytext=(2, 2), textcoords="offset points"
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=7, markerscale=1.2, frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _wrap_title(title: str, width: int = 14) -> str:
    """Break a long column title after '+' or spaces so neighbouring titles do not overlap."""
    parts = re.findall(r"[^+ ]+[+ ]?", title) or [title]
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(line.rstrip() for line in lines)


def plot_image_grid(
    columns: Sequence[Any],
    titles: Sequence[str],
    path: str | os.PathLike,
    max_rows: int = 8,
    cell_inches: float = 1.2,
) -> Path:
    """Grid of images with one titled column per source, as in the paper's Figs. 8-9.

    Typical columns: real | decode(f_id) | decode(f_id+f_pose) |
    decode(f_id+f_pose+f_exp) | true neutral | true frontal_neutral.

    Args:
        columns: C image batches, each shape (B, 3, H, W) with values in [-1, 1];
            row b of the grid shows sample b of every column.
        titles: C column titles.
        path: destination PNG.
        max_rows: at most this many samples (rows) are shown.
        cell_inches: size of one image in the figure.
    """
    if len(columns) == 0 or len(columns) != len(titles):
        raise DataError(f"Image grid got {len(columns)} columns and {len(titles)} titles.")
    imgs = [to_hwc_uint8(c) for c in columns]
    rows = min(min(a.shape[0] for a in imgs), max_rows)
    if rows == 0:
        raise DataError("Image grid got empty image batches.")
    fig = _new_figure(cell_inches * len(imgs), cell_inches * rows + 0.4)
    axes = np.atleast_2d(fig.subplots(rows, len(imgs), squeeze=False))
    for c, (batch, title) in enumerate(zip(imgs, titles)):
        for r in range(rows):
            ax = axes[r, c]
            ax.imshow(batch[r], interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(_wrap_title(title), fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return _save(fig, path)


def plot_pose_subsets(
    subsets_by_method: Mapping[str, Mapping[str, Mapping[str, Any]]],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Accuracy (%) against pose subset, one line per method (paper Table 8 as a plot).

    Args:
        subsets_by_method: ``{method: pose_subset_accuracy(...)}``; the subset order
            of the first method sets the x axis, empty subsets (acc None) are skipped.
        path: destination PNG.
        title: optional figure title.
    """
    if not subsets_by_method:
        raise DataError("Pose-subset plot got no methods.")
    first = next(iter(subsets_by_method.values()))
    keys = list(first)
    fig = _new_figure(6.0, 4.0)
    ax = fig.subplots()
    for method, subsets in subsets_by_method.items():
        xs = [i for i, k in enumerate(keys) if k in subsets and subsets[k].get("acc") is not None]
        ys = [100.0 * subsets[keys[i]]["acc"] for i in xs]
        ax.plot(xs, ys, marker="o", label=method)
    labels = [f"{k}\n(n={first[k]['n']})" for k in keys]
    ax.set_xticks(range(len(keys)), labels=labels)
    ax.set_xlabel("test subset (|yaw| in degrees)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)
