"""QR code images for Pix payloads (SVG for web pages and e-mail, PNG for chat attachments).

Error correction level M and a 4-module quiet zone, which banking apps read reliably; segno
picks the smallest version that fits.  Pure functions: the image is returned, not written.
"""

from __future__ import annotations

import io

import segno

from shared.brazil.errors import InvalidValue

__all__ = ["qr_png", "qr_svg"]

_ERROR_LEVEL = "m"
_BORDER = 4


def _qr(payload: str, scale: int) -> segno.QRCode:
    if not payload:
        raise InvalidValue("a QR code needs a payload")
    if scale < 1:
        raise InvalidValue("QR code scale must be at least 1")
    return segno.make_qr(payload, error=_ERROR_LEVEL, boost_error=False)


def qr_svg(payload: str, *, scale: int = 4) -> str:
    """The QR code of ``payload`` as a standalone SVG document."""
    buffer = io.BytesIO()
    _qr(payload, scale).save(buffer, kind="svg", scale=scale, border=_BORDER)
    return buffer.getvalue().decode("utf-8")


def qr_png(payload: str, *, scale: int = 4) -> bytes:
    """The QR code of ``payload`` as PNG bytes."""
    buffer = io.BytesIO()
    _qr(payload, scale).save(buffer, kind="png", scale=scale, border=_BORDER)
    return buffer.getvalue()
