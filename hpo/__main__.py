"""``python -m hpo``: the same as the ``hpo`` command.

Started safe (``python -P -m hpo``, as a launch starts its workers: see
:func:`hpo.runner.processes.hpo_command`), the working folder is not on sys.path, so a user's
``hpo.py`` there cannot stand in for hpo; it is searched last instead, for the user's own modules.
"""

import os
import sys

if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.append(os.getcwd())

from hpo.cli import main

main()
