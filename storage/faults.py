"""Named crash points for crash tests: `EMOSTORE_FAULT=<name>` makes the process SIGKILL itself there.

Writers call `fault_point("parquet.before_rename")` etc. at the moments a crash matters; in normal
runs the environment variable is unset and a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "EMOSTORE_FAULT"


def fault_point(name: str) -> None:
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
