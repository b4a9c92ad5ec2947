"""Certificate PDFs: rendering (reportlab) and PAdES signing (pyHanko)."""

from certificate_service.pdf.render import ATTACHMENT_NAME, CERTIFICATE_TITLE, register_fonts, render_certificate
from certificate_service.pdf.sign import async_sign_certificate, sign_certificate

__all__ = [
    "ATTACHMENT_NAME",
    "CERTIFICATE_TITLE",
    "async_sign_certificate",
    "register_fonts",
    "render_certificate",
    "sign_certificate",
]
