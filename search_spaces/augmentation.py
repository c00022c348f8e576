"""Data augmentation while training: random translation, rotation and zoom.

Keras preprocessing layers at the start of the model do it, so augmentation
costs no extra data pipeline, is saved in the ``.keras`` file, and is off when
the model predicts. Translation and zoom are fractions of the image side (0.1
is 0.8 pixels on the 8x8 digits, 3.2 on SVHN); rotation is in degrees. Digits
are not mirrored, so there is no flip.
"""

from hpo.space import FloatParam, IntParam

PARAMS = [
    FloatParam("translate", low=0.0, high=0.2, step=0.025, default=0.1),
    IntParam("rotate", low=0, high=20, step=5, default=10),
    FloatParam("zoom", low=0.0, high=0.2, step=0.05, default=0.0),
]
