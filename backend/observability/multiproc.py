"""The ``PROMETHEUS_MULTIPROC_DIR`` of one server start.

prometheus-client's multiprocess mode keeps each worker's values in files of that directory and
sums them on a scrape; files left from an earlier start would be summed too, so every start gets a
fresh directory. The variable must be set before a worker imports prometheus-client, hence here,
in the serving process, before the workers are spawned.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(workers: int, env: MutableMapping[str, str]) -> str | None:
    """Set ``env[ENV]`` for this server start when it needs one; returns the directory.

    An operator's own directory is emptied of earlier files (and kept); otherwise, with more
    than one worker, a temporary one is made, removed when this process exits. One worker without
    the variable needs none: its values live in its own memory.
    """
    given = env.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink(missing_ok=True)
        return str(path)
    if workers <= 1:
        return None
    made = tempfile.mkdtemp(prefix="switchboard-metrics-")
    env[ENV] = made
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    return made
