"""The formats hpo reads and writes, as pydantic models, and their published JSON Schemas.

* :mod:`hpo.schemas.study_file`: a study file (``hpo launch --config study.yaml``);
* :mod:`hpo.schemas.architecture`: a network, as ``hpo-config/1`` holds it;
* :mod:`hpo.schemas.hpo_config`: ``hpo-config/1``, which ``hpo export`` writes and
  ``hpo retrain`` reads;
* :mod:`hpo.schemas.retrain_results`: the ``results.json`` that ``hpo retrain`` writes;
* :mod:`hpo.schemas.base`: what they share, and the one place a validation error becomes an
  hpo error line;
* :mod:`hpo.schemas.publish`: ``docs/schemas/*.schema.json``, generated from the models
  (``python -m hpo.schemas`` rewrites them).

The modules are imported by name, not from here: ``hpo.models.families`` imports the
architecture, and the hpo-config schema imports ``hpo.models.families``.
"""
