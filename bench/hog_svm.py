"""HOG features and a linear SVM, the classic image-classification baseline, on hpo's data.

Histograms of oriented gradients as Dalal and Triggs describe them, written with
numpy (scikit-image is not a dependency): centred [-1, 0, 1] gradients, unsigned
orientations in 9 bins of 20 degrees (each pixel's magnitude split linearly between
its two nearest bins), cells of 4x4 pixels, blocks of 2x2 cells moved one cell at a
time, each block L2-Hys normalized (L2, clipped at 0.2, L2 again): 1,296 features for
a 28x28 image. Then scikit-learn's ``LinearSVC`` (one-vs-rest), its ``C`` chosen from
``--grid`` on hpo's validation split after training on the training split, trained
again with that ``C`` on train + validation and scored once on the test set.

Prints one JSON line: the test accuracy, the chosen C, the validation accuracy of
each C and the seconds.

    .venv/bin/python bench/hog_svm.py [--dataset fashion-mnist] [--data PATH]
        [--grid 0.01,0.1,1] [--cell 4]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def hog(
    images: np.ndarray, cell: int = 4, bins: int = 9, block: int = 2, chunk: int = 5000
) -> np.ndarray:
    """HOG features of grey images ``(N, H, W, 1)`` (colour is averaged), one row per image."""
    return np.concatenate(
        [_hog(images[i : i + chunk], cell, bins, block) for i in range(0, len(images), chunk)]
    )


def _hog(images: np.ndarray, cell: int, bins: int, block: int) -> np.ndarray:
    x = images.mean(axis=-1, dtype=np.float32)  # (n, h, w)
    n, h, w = x.shape
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    position = (np.rad2deg(np.arctan2(gy, gx)) % 180.0) / (180.0 / bins) - 0.5
    low = np.floor(position)
    upper_share = position - low  # the share of the magnitude that goes to the next bin
    low = low.astype(np.int64) % bins
    high = (low + 1) % bins
    ch, cw = h // cell, w // cell

    def per_cell(values: np.ndarray) -> np.ndarray:
        cropped = values[:, : ch * cell, : cw * cell]
        return cropped.reshape(n, ch, cell, cw, cell).sum(axis=(2, 4))

    hist = np.stack(
        [
            per_cell(magnitude * ((low == b) * (1 - upper_share) + (high == b) * upper_share))
            for b in range(bins)
        ],
        axis=-1,
    )  # (n, ch, cw, bins)
    windows = np.lib.stride_tricks.sliding_window_view(hist, (block, block), axis=(1, 2))
    blocks = windows.reshape(n, ch - block + 1, cw - block + 1, -1)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + 1e-10)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + 1e-10)
    return blocks.reshape(n, -1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="an hpo dataset")
    parser.add_argument("--data", default=None, help="its file or folder (hpo's --data)")
    parser.add_argument("--grid", default="0.01,0.1,1", help="values of C, comma-separated")
    parser.add_argument("--cell", type=int, default=4, help="pixels per cell side [4]")
    args = parser.parse_args()
    start = time.time()
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    from hpo.data import load_dataset

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    data = load_dataset(args.dataset, args.data, include_test=True)
    f_train, f_val, f_test = (hog(x, args.cell) for x in (data.x_train, data.x_val, data.x_test))
    featured = time.time()
    by_c = {}
    for c in (float(v) for v in args.grid.split(",")):
        model = LinearSVC(C=c, random_state=0).fit(f_train, data.y_train)
        by_c[c] = float((model.predict(f_val) == data.y_val).mean())
    best_c = max(by_c, key=lambda c: (by_c[c], -c))  # ties: the stronger regularization
    model = LinearSVC(C=best_c, random_state=0).fit(
        np.concatenate([f_train, f_val]), np.concatenate([data.y_train, data.y_val])
    )
    accuracy = float((model.predict(f_test) == data.y_test).mean())
    print(
        json.dumps(
            {
                "test_accuracy": accuracy,
                "C": best_c,
                "val_accuracy_by_C": {str(c): round(a, 4) for c, a in by_c.items()},
                "features": int(f_train.shape[1]),
                "features_s": round(featured - start, 1),
                "wall_s": round(time.time() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
