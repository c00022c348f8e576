"""The retrain's pictures as PNG files: training curves per seed, and the test confusion matrix.

PNG, because optuna-dashboard shows an image artifact inline and any file browser opens it.
Drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def learning_curves(title: str, curves: Sequence[tuple[int, dict]], path: Path) -> Path:
    """Training loss and accuracy per epoch, one line per ``(seed, {"loss": [...], ...})``."""
    plt = _pyplot()
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    for seed, curve in curves:
        epochs = np.arange(1, len(curve["loss"]) + 1)
        marker = "o" if len(epochs) <= 20 else None
        loss.plot(epochs, curve["loss"], marker=marker, label=f"seed {seed}")
        accuracy.plot(epochs, curve["accuracy"], marker=marker, label=f"seed {seed}")
    from matplotlib.ticker import MaxNLocator

    for axes in (loss, accuracy):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    accuracy.set(xlabel="epoch", ylabel="training accuracy", title="accuracy")
    accuracy.legend(loc="lower right", fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def confusion_matrix(
    title: str, matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path
) -> Path:
    """The confusion matrix (rows: true class, columns: predicted), counts in each cell."""
    plt = _pyplot()
    counts = np.asarray(matrix)
    side = max(4.0, 0.45 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(side + 1, side), dpi=100)
    image = axes.imshow(counts, cmap="Blues")
    ticks = np.arange(len(classes))
    axes.set_xticks(ticks, classes, rotation=45, ha="right")
    axes.set_yticks(ticks, classes)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    if len(classes) <= 20:
        threshold = counts.max() / 2 if counts.size else 0
        for (row, col), value in np.ndenumerate(counts):
            color = "white" if value > threshold else "black"
            axes.text(col, row, str(value), ha="center", va="center", color=color, fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
