"""Networks: the searched families, the seeds' named models and your own.

Modules (imported by path; this package imports nothing itself):

- ``families``: the ann and cnn families, from flat parameters to Keras
- ``named``: the seeds' fixed, hand-built networks
- ``user``: a model function of your own (file.py:function)
- ``tuner_hp``: KerasTuner's hp over an Optuna trial
"""

__all__ = ["families", "named", "tuner_hp", "user"]
