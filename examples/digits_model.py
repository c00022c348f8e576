"""The SVHN notebook's KerasTuner build function (seeds/000, ``build_tunable_model``), for the
bundled 8x8 digits: only ``input_shape`` changed (32x32 to 8x8). hpo runs it unchanged:

    hpo launch --config examples/digits-own-model.yaml --workers 2
"""

from keras import backend
from keras.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    LeakyReLU,
    MaxPooling2D,
)
from keras.models import Sequential
from keras.optimizers import Adam


def build_tunable_model(hp):
    """Define a model with tunable hyperparameters"""
    # Clear previous model from memory
    backend.clear_session()

    # Initialize model
    model = Sequential()
    model.add(Input(shape=(8, 8, 1)))

    # First convolutional layer with tunable parameters
    filters = hp.Int("filters_1", min_value=16, max_value=64, step=16)
    model.add(Conv2D(filters, (3, 3), padding="same"))

    # Choose activation function
    if hp.Boolean("use_leaky_relu"):
        model.add(LeakyReLU(negative_slope=hp.Float("leaky_alpha", 0.01, 0.3, step=0.05)))
    else:
        model.add(Activation("relu"))

    # First pooling layer
    model.add(MaxPooling2D(pool_size=(2, 2)))

    # Optional batch normalization
    if hp.Boolean("use_batch_norm"):
        model.add(BatchNormalization())

    # Second convolutional layer
    filters_2 = hp.Int("filters_2", min_value=32, max_value=128, step=32)
    model.add(Conv2D(filters_2, (3, 3), padding="same"))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(pool_size=(2, 2)))

    # Flatten and dense layers
    model.add(Flatten())
    model.add(Dense(hp.Int("dense_units", 32, 128, 32)))
    model.add(Activation("relu"))

    # Dropout for regularization
    dropout_rate = hp.Float("dropout", 0, 0.5, step=0.1)
    if dropout_rate > 0:
        model.add(Dropout(dropout_rate))

    # Output layer
    model.add(Dense(10, activation="softmax"))

    # Compile with tunable learning rate
    learning_rate = hp.Choice("learning_rate", [1e-4, 5e-4, 1e-3, 5e-3])

    model.compile(
        optimizer=Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )

    return model
