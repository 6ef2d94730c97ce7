"""Brazilian formats and rules: documents, phones, boleto, Pix BR Code, calendars, numbers.

Pure functions with no I/O; every module raises :class:`InvalidValue` for input it refuses.
"""

from shared.brazil.errors import InvalidValue

__all__ = ["InvalidValue"]
