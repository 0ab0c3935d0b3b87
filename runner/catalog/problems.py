"""Problems found while loading and validating, each pointing at file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.yamlsource import Document, Path_, format_path


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one value of one file."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        if self.path:
            return f"{self.file}:{self.line}: {self.path}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The problem as data, for ``--output json``."""
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


def display_path(file: Path) -> str:
    """A file name relative to the working directory when it lies below it."""
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


def at(doc: Document, path: Path_, message: str) -> Problem:
    """A problem at *path* inside *doc*."""
    return Problem(display_path(doc.file), doc.line(path), format_path(path) if path else "", message)
