"""``python -m hpo.schemas [FOLDER]``: rewrite the JSON Schemas (by default docs/schemas)."""

from __future__ import annotations

import sys
from pathlib import Path

from hpo.schemas.publish import FOLDER, write


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else FOLDER
    if not args and not folder.parent.is_dir():
        print(f"{folder.parent} is not there (not a checkout?): name a folder", file=sys.stderr)
        return 2
    for path in write(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
