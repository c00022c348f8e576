"""Study configurations: the settings a search runs with, and the choices they take.

Modules (imported by path; this package imports nothing itself):

- ``studies``: StudyConfig, the built-in studies and YAML study files, validated once
- ``choices``: the values hpo's settings take, listed once
"""

__all__ = ["choices", "studies"]
