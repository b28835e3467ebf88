"""Exceptions that name the file, row or key at fault."""


class CalcsigError(Exception):
    """Base class: every calcsig error message is meant for a person to act on."""


class ConfigError(CalcsigError):
    """A configuration key has a wrong type, an unknown name or a missing file."""


class ImageReadError(CalcsigError):
    """An image file is missing, unreadable or not a 2-D grayscale image; the message names the file."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TableError(CalcsigError):
    """A corpus table breaks its schema. `problems` lists every offending row."""

    def __init__(self, where: str, problems: list[str]):
        self.where = where
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:200])
        more = len(self.problems) - 200
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{where}: {len(self.problems)} problem(s)\n{shown}{tail}")


class IngestError(TableError):
    """A source could not be turned into valid corpus tables."""
