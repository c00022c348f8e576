"""Epochs to train, for studies that search it rather than fix it (pruning still applies)."""

from hpo.space import IntParam

PARAMS = [IntParam("epochs", low=5, high=30, step=5)]
