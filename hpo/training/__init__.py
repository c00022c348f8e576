"""Training one configuration: the loop every backend shares, and how it is scored.

Modules (imported by path; this package imports nothing itself):

- ``fit``: fit and evaluate one configuration (Keras, on any backend)
- ``framework``: which Keras backend this process trains on, chosen and started
- ``evaluation``: from a trial's parameters to its metrics
- ``scores``: a classifier's test-set scores
- ``tf_quiet``: TensorFlow's start-up chatter kept quiet
"""

__all__ = ["evaluation", "fit", "framework", "scores", "tf_quiet"]
