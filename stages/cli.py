"""What every stage script shares: logging set-up and turning a user error into a message and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from eat.config import ConfigError

USER_ERRORS = (ConfigError, FileNotFoundError, ValueError)
"""Bad parameters, a missing input, or data a stage cannot use: the message says which and how to fix it."""


def run_stage(body: Callable[[], None]) -> int:
    """Run ``body`` with INFO logging; a :data:`USER_ERRORS` exception prints its message and returns 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        body()
    except USER_ERRORS as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
