"""Keepline's exception tree: one root, each subclass also the matching builtin."""


class KeeplineError(Exception):
    """Root of every error Keepline raises on purpose."""


class ConfigError(KeeplineError, ValueError):
    """A config document is invalid; ``str()`` names the field path and the reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(KeeplineError, OSError):
    """A data file could not be read or written; what is stored stays as it was."""
