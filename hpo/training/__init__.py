"""Training one configuration: the loop every backend shares, and how it is scored.

Modules (imported by path; this package imports nothing itself):

- ``fit``: fit and evaluate one configuration (TensorFlow)
- ``evaluation``: from a trial's parameters to its metrics
- ``scores``: a classifier's test-set scores
- ``tf_quiet``: TensorFlow's start-up chatter kept quiet
"""

__all__ = ["evaluation", "fit", "scores", "tf_quiet"]
