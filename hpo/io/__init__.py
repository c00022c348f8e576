"""What hpo reads from people and writes for them: YAML, output files, progress lines.

Modules (imported by path; this package imports nothing itself):

- ``yaml_file``: YAML files people write, read safely
- ``outputs``: files written whole (exports, reports, results)
- ``progress``: live progress on a terminal or in a log
"""

__all__ = ["outputs", "progress", "yaml_file"]
