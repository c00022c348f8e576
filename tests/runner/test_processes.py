"""How a launch starts its workers: never as a user's file that happens to be named hpo.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hpo_command import hpo_env

from hpo.runner.processes import hpo_command

#: A user's file named hpo.py in the folder hpo runs in: `python -m hpo` would run it.
USERS_HPO_PY = "import sys\nprint('the user hpo.py ran')\nsys.exit(7)\n"


@pytest.mark.parametrize("safe_flag", [True, False], ids=["python -P", "python 3.10"])
def test_a_worker_command_runs_hpo_not_a_users_hpo_py_and_finds_the_users_modules(
    tmp_path: Path, safe_flag: bool
) -> None:
    """Workers used to start as `python -m hpo`, the working folder first on sys.path: a model
    file named hpo.py there ran in place of each worker. The folder is still searched (last),
    for the user's own modules named by dotted path (here a search-space module)."""
    (tmp_path / "hpo.py").write_text(USERS_HPO_PY)
    (tmp_path / "my_spaces").mkdir()
    (tmp_path / "my_spaces" / "__init__.py").write_text("")
    (tmp_path / "my_spaces" / "units.py").write_text(
        "from hpo.space import IntParam\n"
        "PARAMS = [IntParam('dense_units_1', low=32, high=64, step=32, default=32)]\n"
    )
    (tmp_path / "study.yaml").write_text(
        "name: mine\ndataset: digits\nmodel: ann\nsearch_space: [my_spaces.units]\n"
    )
    result = subprocess.run(
        hpo_command("create", "--config", "study.yaml", safe_flag=safe_flag),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=hpo_env(),
        timeout=120,
        check=False,
    )
    assert "the user hpo.py ran" not in result.stdout
    assert result.returncode == 0, result.stderr
    assert "Study 'mine' is ready" in result.stdout
