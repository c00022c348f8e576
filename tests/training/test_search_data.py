"""What a worker trains on: the study's training subset, beside the whole dataset."""

from __future__ import annotations

import pytest

from hpo.config.studies import builtin
from hpo.data import load_dataset
from hpo.errors import ConfigError
from hpo.training.evaluation import SearchData


def test_trials_train_on_the_stratified_subset_and_the_dataset_keeps_every_image() -> None:
    dataset = load_dataset("digits", None, include_test=False)
    config = builtin("digits-cnn").with_options(train_subset=300)
    data = SearchData.prepare(dataset, config)
    assert len(data.x_subset) == len(data.y_subset) == 300
    assert data.dataset is dataset and len(dataset.x_train) > 1000  # the whole set, as loaded
    assert set(data.y_subset.tolist()) == set(range(10))  # every class kept (stratified)
    whole = SearchData.prepare(dataset, builtin("digits-cnn"))  # no subset: every image
    assert len(whole.x_subset) == len(dataset.x_train)


def test_search_data_never_holds_the_test_set() -> None:
    with pytest.raises(ConfigError, match="without the test set"):
        SearchData.prepare(load_dataset("digits", None, include_test=True), builtin("digits-cnn"))
