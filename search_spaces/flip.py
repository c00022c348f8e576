"""Mirror training images left to right, half the time: for clothing and objects, whose mirror
image is the same class (Fashion-MNIST, photos); never for digits, whose mirror is not.

A Keras ``RandomFlip("horizontal")`` layer at the start of the model, like the other
augmentation: saved in the ``.keras`` file and off when the model predicts.
"""

from hpo.space import CategoricalParam

PARAMS = [CategoricalParam("flip", choices=(False, True), default=True)]
