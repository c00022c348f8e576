"""Model families and the seeds' named architectures (parameter counts must equal the seeds')."""

import pytest

from hpo.errors import ArchitectureError, ConfigError
from hpo.models import (
    NAMED_MODELS,
    Architecture,
    architecture_from_params,
    build_model,
    check_fits,
    check_param_name,
    count_params,
)

SEED_COUNTS = {
    "svhn-ann-1": 68_010,
    "svhn-ann-2": 310_250,
    "svhn-cnn-1": 267_306,
    "svhn-cnn-2": 164_362,
    "mnist-cnn-3conv": 241_546,
    "digits-cnn-uci": 102_794,
}


@pytest.mark.parametrize("name, expected", SEED_COUNTS.items())
def test_named_models_have_the_seeds_parameter_counts(name, expected):
    model = NAMED_MODELS[name]
    assert count_params(model.architecture, model.input_shape) == expected
    assert build_model(model.architecture, model.input_shape).count_params() == expected


def test_flat_params_build_the_searched_cnn():
    arch = architecture_from_params("cnn", {
        "conv_blocks": 2, "filters_1": 16, "filters_2": 64, "kernel_size": 5,
        "activation": "leaky_relu", "leaky_alpha": 0.2, "batch_norm": True,
        "dense_layers": 1, "dense_units_1": 32, "dropout": 0.3,
    })
    assert [b.filters for b in arch.conv_blocks] == [(16,), (64,)]
    assert all(b.kernel_size == 5 and b.batch_norm for b in arch.conv_blocks)
    assert [(d.units, d.dropout) for d in arch.dense_layers] == [(32, 0.3)]
    model = build_model(arch, (8, 8, 1))
    assert model.count_params() == count_params(arch, (8, 8, 1))
    assert model.output_shape == (None, 10)


def test_ann_params_and_round_trip():
    arch = architecture_from_params("ann", {"dense_layers": 3, "dense_units_1": 64, "batch_norm": True})
    assert [d.units for d in arch.dense_layers] == [64, 128, 128]
    assert all(d.batch_norm for d in arch.dense_layers)
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert build_model(arch, (8, 8, 1)).count_params() == count_params(arch, (8, 8, 1))


def test_too_many_conv_blocks_for_the_image_is_an_architecture_error():
    arch = architecture_from_params("cnn", {"conv_blocks": 4})
    with pytest.raises(ArchitectureError, match="at most 3 conv blocks"):
        check_fits(arch, (8, 8, 1))
    check_fits(arch, (32, 32, 1))


@pytest.mark.parametrize("data, message", [
    ({"family": "rnn"}, "unknown model family"),
    ({"family": "cnn", "activation": "swishy"}, "unknown activation"),
    ({"family": "cnn", "dense_layers": [{"units": 0}]}, "positive integers"),
    ({"family": "cnn", "dense_layers": [{"units": 8, "dropout": 1.5}]}, "dropout"),
    ({"family": "cnn", "conv_blocks": [{"filters": [8], "colour": 1}]}, "unknown key"),
    ({"family": "ann", "conv_blocks": [{"filters": [8]}]}, "no conv_blocks"),
    ({"activation": "relu"}, "missing 'family'"),
])
def test_bad_architecture_dicts_are_rejected(data, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict(data)


def test_param_names_are_checked_per_family():
    check_param_name("cnn", "filters_3")
    check_param_name("ann", "dense_units_2")
    check_param_name("ann", "learning_rate")
    with pytest.raises(ConfigError, match="not used by the ann family"):
        check_param_name("ann", "filters_1")
