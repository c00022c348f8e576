"""TensorFlow's start-up chatter, kept off the user's terminal.

Importing TensorFlow prints lines such as "oneDNN custom operations are on" from
C++, before Python's logging is set up and whatever ``TF_CPP_MIN_LOG_LEVEL``
says. hpo imports TensorFlow only once a command's input has been checked (so a
mistake is one ``Error:`` line), and then through :func:`import_tensorflow`,
which drops that chatter and passes anything else on. A launch filters its
workers' stderr with :func:`is_chatter` too.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

_CHATTER = re.compile(
    r"^(I\d{4} "  # absl INFO lines (oneDNN, cpu_feature_guard, ...)
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|W\d{4} .*(cpu_feature_guard|oneDNN|TF-TRT|cuda)"
    r"|E\d{4} .*(Unable to register cu(DNN|FFT|BLAS)|cuInit|failed call to cuInit)"
    r"|To enable the following instructions|This TensorFlow binary is optimized)"
)


def is_chatter(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's start-up messages rather than a real problem."""
    return bool(_CHATTER.match(line))


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, with what it prints while starting up filtered out of stderr, and
    its C++ log quiet from then on (errors only, unless ``TF_CPP_MIN_LOG_LEVEL``
    says otherwise)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        for line in caught.read().decode(errors="replace").splitlines(keepends=True):
            if not is_chatter(line):
                sys.stderr.write(line)
        sys.stderr.flush()
    return tensorflow
