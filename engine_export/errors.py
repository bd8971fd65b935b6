"""The one error engine_export raises on purpose.

engine_export does not depend on pyfacerig, so it carries its own error type.
It derives from ``ValueError`` so callers that only know the standard library
can still catch it; pyfacerig re-wraps it in ``pyfacerig.errors.ExportError``.
"""


class ExportError(ValueError):
    """An asset cannot be written: bad data, names the format cannot carry, or an unwritable path.

    Raised before any byte reaches the destination; the message names the offending thing.
    """
