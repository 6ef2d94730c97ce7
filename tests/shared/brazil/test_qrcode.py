"""QR images: valid SVG and PNG of the expected size (level M, 4-module border)."""

from __future__ import annotations

import struct

import pytest
import segno

from shared.brazil.errors import InvalidValue
from shared.brazil.qrcode import qr_png, qr_svg

PAYLOAD = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)


def _side(scale: int) -> int:
    qr = segno.make_qr(PAYLOAD, error="m", boost_error=False)
    assert qr.error == "M"
    return (int(qr.symbol_size(scale=1, border=0)[0]) + 2 * 4) * scale


def test_png() -> None:
    png = qr_png(PAYLOAD, scale=3)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert width == height == _side(3)


def test_svg() -> None:
    svg = qr_svg(PAYLOAD)
    assert svg.startswith("<?xml")
    assert f'width="{_side(4)}"' in svg
    assert svg.rstrip().endswith("</svg>")


@pytest.mark.parametrize(("payload", "scale"), [("", 4), (PAYLOAD, 0)])
def test_refuses(payload: str, scale: int) -> None:
    with pytest.raises(InvalidValue):
        qr_svg(payload, scale=scale)
    with pytest.raises(InvalidValue):
        qr_png(payload, scale=scale)
