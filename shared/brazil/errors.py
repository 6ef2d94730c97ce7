from __future__ import annotations


class InvalidValue(ValueError):
    """A value that does not parse or validate.  ``reason`` is a sentence for the caller
    (English, like the rest of the API), safe to show: it never echoes personal data back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
