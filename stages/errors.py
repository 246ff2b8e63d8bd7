"""The one exception type a user should ever see, and the wrapper that prints it as one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class SuperalignError(Exception):
    """A problem with the user's input or environment, explained in one line.

    Stage mains turn it into `error: <message>` on stderr and exit code 2, so DVC and
    Prefect show the cause instead of a traceback.
    """


def one_line_errors(main: Callable[..., None]) -> Callable[..., None]:
    """Decorate a stage's `main` so a SuperalignError ends the process with one clear line."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except SuperalignError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
