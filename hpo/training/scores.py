"""Scores of a classifier's predictions on a test set, as results.json and the report hold them."""

from __future__ import annotations

from typing import Any

import numpy as np


def test_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 (by class name) and the confusion matrix (rows:
    the true class, in the order of ``classes``)."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    labels = list(range(len(classes)))
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    per_class = {
        name: {
            "precision": report[str(c)]["precision"],
            "recall": report[str(c)]["recall"],
            "f1": report[str(c)]["f1-score"],
            "support": int(report[str(c)]["support"]),
        }
        for c, name in enumerate(classes)
    }
    macro = report["macro avg"]
    return {
        "test_accuracy": float(accuracy_score(y_true, y_pred)),
        "test_samples": len(y_true),
        "precision_macro": macro["precision"],
        "recall_macro": macro["recall"],
        "f1_macro": macro["f1-score"],
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(classes),
    }
