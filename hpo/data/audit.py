"""The split audit: no image is both learned from and scored on.

Every image of every split is hashed (exact duplicates, after the pixels are checked and
scaled). A file's validation split that repeats training or test images does not measure
generalization: when more than :data:`REJECT_SHARE` of it are repeats (a split built from
the others, as in the SVHN notebooks' file, whose ``X_val`` holds ``X_train`` and ``X_test``
again) it is not used and a validation split is carved from the training images instead;
a few repeats (natural duplicates) are left out of it. Training and validation images equal
to a test image are left out of the data a search or a retrain trains on, so the one test
score is on images no model learned from. The file itself is never changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: A validation split with more repeats than this share is not used (a few are duplicates).
REJECT_SHARE = 0.01


@dataclass(frozen=True)
class SplitAudit:
    """What the audit found, and what it changed; stored with the study."""

    train: int  # training images in the data
    val: int | None  # validation images in the data (None: it has no validation split)
    test: int | None  # test images in the data (None: it has no test split)
    val_in_train: int = 0  # validation images equal to a training image
    val_in_test: int = 0  # validation images equal to a test image
    val_rejected: bool = False  # the data's validation split is not used: one was carved
    val_dropped: int = 0  # repeats left out of a validation split that is used
    test_in_training: int = 0  # test images equal to a training or kept validation image
    train_dropped: int = 0  # training images left out for being equal to a test image

    @property
    def clean(self) -> bool:
        return not (self.val_in_train or self.val_in_test or self.test_in_training)

    def describe(self) -> str:
        """One line for ``hpo status`` and the report."""
        if self.test is None:
            tested = "no test split to compare"
        else:
            tested = (
                f"{self.test_in_training:,} of {self.test:,} test images repeat training ones"
                + (f" ({self.train_dropped:,} left out of training)" if self.train_dropped else "")
            )
        if self.val is None:
            validated = "validation carved from training"
        else:
            validated = (
                f"{self.val_in_train + self.val_in_test:,} of {self.val:,} validation images "
                f"repeat training or test ones"
            )
            if self.val_rejected:
                validated += " (not used: validation carved from training)"
            elif self.val_dropped:
                validated += f" ({self.val_dropped:,} left out)"
        return f"{validated}; {tested}"

    def warnings(self, where: str, val_key: str, val_fraction: float) -> list[str]:
        """One line for each thing the audit changed (nothing when the splits are clean)."""
        lines = []
        repeats = (
            f"{where}: {val_key} repeats {self.val_in_train:,} training and "
            f"{self.val_in_test:,} test images among its {self.val or 0:,}"
        )
        if self.val_rejected:
            lines.append(
                f"{repeats}, so it would score models on images they learned from or on the "
                f"test set: it is not used; {val_fraction:g} of the training images are the "
                "validation split instead (the file is unchanged)"
            )
        elif self.val_dropped:
            lines.append(f"{repeats}: those {self.val_dropped:,} are left out of validation")
        if self.test_in_training:
            lines.append(
                f"{where}: {self.test_in_training:,} of the {self.test or 0:,} test images also "
                f"appear among the training or validation images; the {self.train_dropped:,} "
                "training images equal to them are left out, so the test score is on unseen "
                "images"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitAudit:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Verdict:
    """The audit and the images it keeps: ``keep_val`` None means "carve validation anew"."""

    audit: SplitAudit
    keep_train: np.ndarray
    keep_val: np.ndarray | None


def image_hashes(x: np.ndarray) -> list[bytes]:
    """A 128-bit BLAKE2b digest of each image's pixels."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]


def audit_splits(
    x_train: np.ndarray, x_val: np.ndarray | None, x_test: np.ndarray | None
) -> Verdict:
    """Compare every split's images with the others'; decide what training and validation keep."""
    train = image_hashes(x_train)
    val = image_hashes(x_val) if x_val is not None else []
    tested = image_hashes(x_test) if x_test is not None else []
    test = set(tested)
    train_set = set(train)
    train_in_test = np.fromiter((h in test for h in train), dtype=bool, count=len(train))
    val_in_test = np.fromiter((h in test for h in val), dtype=bool, count=len(val))
    val_in_train = np.fromiter((h in train_set for h in val), dtype=bool, count=len(val))
    repeats = val_in_test | val_in_train
    rejected = x_val is not None and repeats.sum() > REJECT_SHARE * len(val)
    keep_val = None if x_val is None or rejected else ~repeats
    # what is trained on: the training images and the validation images that are kept
    kept_val = set() if keep_val is None else {h for h, k in zip(val, keep_val, strict=True) if k}
    audit = SplitAudit(
        train=len(train),
        val=None if x_val is None else len(val),
        test=None if x_test is None else len(x_test),
        val_in_train=int(val_in_train.sum()),
        val_in_test=int(val_in_test.sum()),
        val_rejected=bool(rejected),
        val_dropped=0 if keep_val is None else int(repeats.sum()),
        test_in_training=sum(1 for h in tested if h in train_set or h in kept_val),
        train_dropped=int(train_in_test.sum()),
    )
    return Verdict(audit, ~train_in_test, keep_val)
