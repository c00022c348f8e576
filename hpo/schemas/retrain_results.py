"""``results.json``: what ``hpo retrain`` measured, rewritten after every run.

One document per output folder: a ``summary`` entry per configuration (mean and spread over its
seeds, the configuration as ``hpo-config/1`` holds it, and the seeds' ensemble when one was
made) and a ``results`` entry per configuration and seed (test accuracy, per-class scores,
confusion matrix, the saved model). ``hpo retrain`` reads it back to keep other configurations'
entries, and ``hpo report --retrain`` to draw them. The keys a report needs are required; the
rest, which ``hpo retrain`` always writes, may be left out of a file written by hand.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hpo.schemas.base import Checked, Flag, number, says, text, whole
from hpo.schemas.hpo_config import ConfigEntry, Source

FORMAT = "hpo-retrain/1"

_CONFIG = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())  # model_path
Fraction = number(ge=0, le=1)
Score = number(ge=0)
Count = whole(0)
#: Rows: the true class; columns: the predicted one.
ConfusionMatrix = Annotated[list[list[Count]], says("a list of rows of counts")]


class ClassScores(Checked, BaseModel):
    """Precision, recall and F1 of one class, and how many test images hold it."""

    model_config = _CONFIG

    precision: Fraction
    recall: Fraction
    f1: Fraction
    support: Count | None = None


#: Keyed by the class name ("0" to "9" for digits, "Trouser" or a folder's name).
PerClass = dict[str, ClassScores]
#: The class names in the network's output order (the confusion matrix's rows and columns).
Classes = Annotated[list[text()], Field(min_length=2)]


class TrainCurve(Checked, BaseModel):
    """Training loss and accuracy at the end of each epoch (the retrain validates nothing)."""

    model_config = _CONFIG

    loss: list[float]
    accuracy: list[Fraction]


class SeedRun(Checked, BaseModel):
    """One configuration trained with one seed on train + validation, scored once on test."""

    model_config = _CONFIG

    config: text()
    seed: whole(0)
    test_accuracy: Fraction
    test_samples: Count | None = None
    precision_macro: Fraction | None = None
    recall_macro: Fraction | None = None
    f1_macro: Fraction | None = None
    per_class: PerClass | None = None
    confusion_matrix: ConfusionMatrix | None = None
    classes: Classes | None = None
    inference_ms: Score | None = None
    n_params: Count | None = None
    model_bytes: Count | None = None
    model_path: text() | None = None  # relative to the output folder
    train_samples: Count | None = None
    #: Training images left out for being equal to a test image (the split audit).
    test_repeats_left_out: Count | None = None
    data_sha256: text() | None = None
    model_sha256: text() | None = None  # a model function's file, as the retrain read it
    epochs: whole(1) | None = None
    train_seconds: Score | None = None
    train_curve: TrainCurve | None = None
    reload_identical: Flag | None = None  # the saved file predicts exactly as evaluated


class Ensemble(Checked, BaseModel):
    """The seeds' models averaged into one saved model, scored once on test."""

    model_config = _CONFIG

    members: whole(2)
    test_accuracy: Fraction
    f1_macro: Fraction | None = None
    per_class: PerClass | None = None
    confusion_matrix: ConfusionMatrix | None = None
    classes: Classes | None = None
    inference_ms: Score | None = None
    n_params: Count | None = None
    model_bytes: Count | None = None
    model_path: text() | None = None
    reload_identical: Flag | None = None


class Summary(Checked, BaseModel):
    """One configuration over its seeds (population standard deviations)."""

    model_config = _CONFIG

    config: text()
    source: Source | None = None  # the study and trial it came from, if any
    architecture: text() | None = None  # a one-line description
    data_sha256: text() | None = None
    model_sha256: text() | None = None  # a model function's file, as the retrain read it
    seeds: Annotated[list[whole(0)], Field(min_length=1)]
    test_accuracy_mean: Fraction
    test_accuracy_std: Score
    f1_macro_mean: Fraction | None = None
    f1_macro_std: Score | None = None
    val_accuracy: Fraction | None = None  # the search's, for comparison
    n_params: Count | None = None
    model_bytes: Count | None = None
    epochs: whole(1) | None = None
    train_seconds_mean: Score | None = None
    inference_ms_mean: Score | None = None
    reload_identical: Flag | None = None
    configuration: ConfigEntry | None = None  # what was retrained, as hpo-config/1 holds it
    ensemble: Ensemble | None = None


class RetrainResults(Checked, BaseModel):
    """An ``hpo retrain`` output folder's ``results.json``."""

    model_config = _CONFIG

    format: Annotated[Literal[FORMAT], says(repr(FORMAT))]
    updated_at: text() | None = None
    versions: dict[str, str] | None = None  # package versions of the last run
    summary: list[Summary]
    results: list[SeedRun]
