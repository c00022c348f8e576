"""Classes: a dataset's labels mapped once to the indices a network outputs, and named.

A dataset of known classes (the digits, Fashion-MNIST) has labels 0..9 (in an SVHN file
10 also means the digit 0) and fixed names. Any other dataset (``arrays``, ``folder``)
takes its classes from its training labels: whole numbers of any range, or names,
sorted; index ``i`` of the network's output is ``classes[i]``. Validation and test
labels must be classes that training has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpo.errors import DataError

DIGITS = tuple(str(digit) for digit in range(10))
FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Labelling:
    """How a dataset's labels become class indices."""

    fixed: tuple[str, ...] | None = None  # the dataset's classes; None: its training labels'
    ten_is_zero: bool = False  # SVHN: the label 10 is the digit 0

    def classes(self, where: str, key: str, y_train: np.ndarray) -> tuple[str, ...]:
        """The class names, index by index; training must hold two classes at least."""
        found = np.unique(self._known(where, key, y_train) if self.fixed else y_train)
        if found.size < 2:
            name = self.fixed[found[0]] if self.fixed else found[0]
            raise DataError(
                f"{where}: {key} holds only the class {name!s}; a classifier needs training "
                "images of at least two classes (every one it should recognize)"
            )
        return self.fixed or tuple(str(v) for v in found)

    def encode(
        self, where: str, key: str, y: np.ndarray, classes: tuple[str, ...], split: str
    ) -> np.ndarray:
        """Labels as int64 class indices, or a DataError naming the labels that fit no class."""
        if self.fixed is not None:
            return self._known(where, key, y)
        names = y if y.dtype.kind == "U" else y.astype(str)
        index = {name: i for i, name in enumerate(classes)}
        unknown = sorted(set(np.unique(names).tolist()) - index.keys())
        if unknown:
            shown = ", ".join(repr(v) for v in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise DataError(
                f"{where}: {key} has class(es) {shown} that the training images lack; every "
                f"{split} class needs training images"
            )
        return np.fromiter((index[v] for v in names), dtype=np.int64, count=len(names))

    def _known(self, where: str, key: str, y: np.ndarray) -> np.ndarray:
        assert self.fixed is not None
        top = len(self.fixed) - 1
        allowed = f"0-{top}" + (" (or 10, read as 0, in an SVHN file)" if self.ten_is_zero else "")
        if y.dtype.kind == "U":
            raise DataError(
                f"{where}: {key} holds class names; labels must be the numbers {allowed}"
            )
        labels = y.astype(np.int64)  # always a copy
        if self.ten_is_zero:
            labels[labels == 10] = 0
        outside = np.unique(labels[(labels < 0) | (labels > top)])
        if outside.size:
            shown = ", ".join(str(v) for v in outside[:5]) + (", ..." if outside.size > 5 else "")
            raise DataError(
                f"{where}: {key} has labels outside {'0-10' if self.ten_is_zero else allowed} "
                f"({shown}); labels must be the numbers {allowed}"
            )
        return labels
