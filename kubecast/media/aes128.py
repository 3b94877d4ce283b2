"""HLS ``METHOD=AES-128``: a whole segment, TS or fMP4, in AES-128-CBC with PKCS7 padding
(RFC 8216 section 5.2), by the ``cryptography`` library."""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def encrypt_segment(data: bytes, *, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()
