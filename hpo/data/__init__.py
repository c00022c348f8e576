"""Data: every format users have, loaded, checked, audited and split once.

The public face is :func:`load_dataset` and the :class:`Dataset` it returns; the
modules behind it each do one job: :mod:`hpo.data.dataset` (the datasets, their
splits and the Dataset), the formats (:mod:`hpo.data.files`: HDF5, NPZ and MAT;
:mod:`hpo.data.idx`: MNIST's IDX files; :mod:`hpo.data.folder`: a folder of images
per class), :mod:`hpo.data.labels` (labels to named classes), :mod:`hpo.data.audit`
(the split audit) and :mod:`hpo.data.checks` (arrays made ready for Keras).
"""

from hpo.config.choices import DATASETS
from hpo.data.dataset import DIGITS_SOURCE, Dataset, load_dataset, load_full_training
from hpo.data.files import file_sha256

__all__ = [
    "DATASETS",
    "DIGITS_SOURCE",
    "Dataset",
    "file_sha256",
    "load_dataset",
    "load_full_training",
]
