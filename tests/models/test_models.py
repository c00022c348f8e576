"""Model families and the seeds' named architectures (parameter counts must equal the seeds')."""

import pytest

from hpo.errors import ArchitectureError, ConfigError
from hpo.models.families import (
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
    arch = architecture_from_params(
        "cnn",
        {
            "conv_blocks": 2,
            "filters_1": 16,
            "filters_2": 64,
            "kernel_size": 5,
            "activation": "leaky_relu",
            "leaky_alpha": 0.2,
            "batch_norm": True,
            "dense_layers": 1,
            "dense_units_1": 32,
            "dropout": 0.3,
        },
    )
    assert [b.filters for b in arch.conv_blocks] == [(16,), (64,)]
    assert all(b.kernel_size == 5 and b.batch_norm for b in arch.conv_blocks)
    assert [(d.units, d.dropout) for d in arch.dense_layers] == [(32, 0.3)]
    model = build_model(arch, (8, 8, 1))
    assert model.count_params() == count_params(arch, (8, 8, 1))
    assert model.output_shape == (None, 10)


def test_ann_params_and_round_trip():
    arch = architecture_from_params(
        "ann", {"dense_layers": 3, "dense_units_1": 64, "batch_norm": True}
    )
    assert [d.units for d in arch.dense_layers] == [64, 128, 128]
    assert all(d.batch_norm for d in arch.dense_layers)
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert build_model(arch, (8, 8, 1)).count_params() == count_params(arch, (8, 8, 1))


def test_too_many_conv_blocks_for_the_image_is_an_architecture_error():
    arch = architecture_from_params("cnn", {"conv_blocks": 4})
    with pytest.raises(ArchitectureError, match="at most 3 conv blocks"):
        check_fits(arch, (8, 8, 1))
    check_fits(arch, (32, 32, 1))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"family": "rnn"}, "architecture.family must be one of cnn, ann, got 'rnn'"),
        ({"family": "cnn", "activation": "swishy"}, "activation must be one of relu, leaky_relu"),
        (
            {"family": "cnn", "dense_layers": [{"units": 0}]},
            r"dense_layers\[0\].units must be an integer >= 1, got 0",
        ),
        (
            {"family": "cnn", "dense_layers": [{"units": 8, "dropout": 1.5}]},
            "dropout must be a number from 0 to below 1, got 1.5",
        ),
        (
            {"family": "cnn", "conv_blocks": [{"filters": [8], "colour": 1}]},
            r"conv_blocks\[0\] has unknown key\(s\) colour; allowed: filters, kernel_size",
        ),
        ({"family": "ann", "conv_blocks": [{"filters": [8]}]}, "no conv_blocks"),
        ({"activation": "relu"}, r"architecture.family is missing \(required\)"),
    ],
)
def test_bad_architecture_dicts_are_rejected(data, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict(data)


def test_param_names_are_checked_per_family():
    check_param_name("cnn", "filters_3")
    check_param_name("ann", "dense_units_2")
    check_param_name("ann", "learning_rate")
    with pytest.raises(ConfigError, match="not used by the ann family"):
        check_param_name("ann", "filters_1")


def test_the_modern_recipe_builds_augmentation_several_convs_and_a_gap_head():
    arch = architecture_from_params(
        "cnn",
        {
            "conv_blocks": 2,
            "filters_1": 8,
            "filters_2": 16,
            "convs_per_block": 3,
            "head": "gap",
            "batch_norm": True,
            "translate": 0.1,
            "rotate": 10,
            "zoom": 0.05,
            "dense_units_1": 16,
        },
    )
    assert [b.filters for b in arch.conv_blocks] == [(8, 8, 8), (16, 16, 16)]
    assert (arch.augmentation.translate, arch.augmentation.rotate, arch.augmentation.zoom) == (
        0.1,
        10.0,
        0.05,
    )
    assert arch.head == "gap" and arch.batch_norm_momentum == 0.9
    model = build_model(arch, (8, 8, 1))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:3] == ["RandomTranslation", "RandomRotation", "RandomZoom"]
    assert (
        kinds.count("Conv2D") == 6 and "GlobalAveragePooling2D" in kinds and "Flatten" not in kinds
    )
    assert all(
        layer.momentum == 0.9
        for layer in model.layers
        if type(layer).__name__ == "BatchNormalization"
    )
    # a GAP head feeds the dense layer 16 features, not 2x2x16
    assert model.count_params() == count_params(arch, (8, 8, 1))
    assert Architecture.from_dict(arch.to_dict()) == arch


def test_augmentation_changes_images_only_while_training():
    import numpy as np

    arch = architecture_from_params(
        "cnn",
        {"conv_blocks": 1, "filters_1": 8, "translate": 0.2, "rotate": 20, "dense_units_1": 8},
    )
    model = build_model(arch, (8, 8, 1))
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    predicted = model.predict(x, verbose=0)
    assert np.array_equal(predicted, model.predict(x, verbose=0))
    assert np.allclose(np.asarray(model(x, training=False)), predicted, atol=1e-6)
    assert not np.allclose(np.asarray(model(x, training=True)), predicted, atol=1e-3)


def test_the_seeds_models_keep_keras_batch_norm_momentum():
    assert all(m.architecture.batch_norm_momentum == 0.99 for m in NAMED_MODELS.values())
    # an hpo-config/1 file without the key gets hpo's momentum
    assert Architecture.from_dict({"family": "cnn"}).batch_norm_momentum == 0.9


@pytest.mark.parametrize(
    "data, message",
    [
        ({"family": "cnn", "head": "attention"}, "head must be one of flatten, gap"),
        ({"family": "ann", "head": "gap"}, "needs conv_blocks"),
        (
            {"family": "cnn", "augmentation": {"rotate": 400}},
            "rotate must be a number from 0 to 180",
        ),
        ({"family": "cnn", "augmentation": {"shear": 0.1}}, "unknown key"),
        ({"family": "cnn", "batch_norm_momentum": 1.5}, "batch_norm_momentum"),
    ],
)
def test_bad_recipe_fields_are_rejected(data, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict(data)
