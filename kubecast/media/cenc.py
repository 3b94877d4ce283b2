"""Common Encryption (ISO/IEC 23001-7) of our own CMAF, applied on the way out.

The store keeps one clear copy; ``protect_init`` and ``protect_segment`` turn an init segment
and a media segment of one track into their ``cenc`` or ``cbcs`` form, with the
``cryptography`` library doing AES:

- ``cenc``: AES-CTR; audio samples whole, video by subsample (per NAL unit), with an 8-byte
  IV per sample in ``senc``.  A sample IV is (a per-key, per-track 64-bit start + the
  sample's decode time): distinct for every sample of a track under a key, and tracks start
  2^64-far-apart-at-random, so no two samples share a counter block in practice.
- ``cbcs``: AES-CBC with the constant IV of the key (in ``tenc``, nothing per sample), video by
  subsample with the 1:9 pattern (one 16-byte block encrypted, nine clear), the chain and the
  IV restarting with each subsample; audio samples whole, every full block encrypted.

Video subsamples: a coded slice (NAL types 1 and 5) keeps its length prefix and first 32
bytes clear (the slice header, as HLS SAMPLE-AES does); every other NAL unit (SPS, PPS, SEI,
AUD) is left clear.  For ``cenc`` the protected part of a slice is a whole number of
16-byte blocks, the rest joining the clear bytes, as decoders that decrypt in place expect.

The init segment's sample entry becomes ``encv``/``enca`` with ``sinf`` (``frma`` naming the
original, ``schm``, ``schi``/``tenc`` with the key id) and the ``moov`` ends with the ``pssh``
boxes given; the media segment gets ``saiz``/``saio``/``senc`` and a ``trun`` data offset
that accounts for them (``kubecast.media.mp4.media_segment``).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .fmp4 import BoxStream, parse_fragment
from .mp4 import Mp4Error, Sample, SampleAuxiliary, box, full_box, iter_boxes, media_segment

Scheme = Literal["cenc", "cbcs"]
SCHEMES: tuple[Scheme, ...] = ("cenc", "cbcs")
CLEAR_SLICE_LEAD = 32
SLICE_TYPES = {1, 5}
PATTERN = (1, 9)  # cbcs video: crypt, skip (16-byte blocks)
MAX_CLEAR = 0xFFFF  # a subsample's clear byte count is 16 bits

# DASH-IF system ids: W3C ClearKey, and the common one every client understands.
CLEARKEY_SYSTEM_ID = uuid.UUID("e2719d58-a985-b3c9-781a-b030af78d30e")
COMMON_SYSTEM_ID = uuid.UUID("1077efec-c0b2-4d02-ace3-3c1e52e2fb4b")

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_PROTECTED_ENTRY = {b"avc1": b"encv", b"avc3": b"encv", b"mp4a": b"enca"}


@dataclass(frozen=True)
class Subsample:
    clear: int
    protected: int


def pssh(system_id: uuid.UUID, key_ids: list[bytes], data: bytes = b"") -> bytes:
    """A version-1 ``pssh`` (key ids listed in the box, as ClearKey and the common system need)."""
    return full_box(
        b"pssh", 1, 0, system_id.bytes, struct.pack(">I", len(key_ids)), *key_ids, struct.pack(">I", len(data)), data
    )


def _tenc(scheme: Scheme, key_id: bytes, constant_iv: bytes, video: bool) -> bytes:
    if scheme == "cenc":
        return full_box(b"tenc", 0, 0, bytes([0, 0, 1, 8]), key_id)
    crypt, skip = PATTERN if video else (0, 0)  # 0:0 is "every block" for a track without a pattern
    return full_box(
        b"tenc", 1, 0, bytes([0, (crypt << 4) | skip, 1, 0]), key_id, bytes([len(constant_iv)]), constant_iv
    )


def _protected_entries(data: bytes, start: int, end: int, sinf_of: Callable[[bytes], bytes]) -> bytes:
    out = [data[start : start + 8]]  # stsd's version, flags and entry count
    for kind, entry_start, entry_end in iter_boxes(data, start + 8, end):
        if kind not in _PROTECTED_ENTRY:
            raise Mp4Error(f"cannot protect a {kind!r} sample entry")
        # the sinf box goes last, after the entry's own fields and boxes
        out.append(box(_PROTECTED_ENTRY[kind], data[entry_start:entry_end], sinf_of(kind)))
    return b"".join(out)


def _rebuild(data: bytes, start: int, end: int, sinf_of: Callable[[bytes], bytes], moov_tail: bytes) -> bytes:
    parts, box_start = [], start
    for kind, payload_start, payload_end in iter_boxes(data, start, end):
        if kind in _CONTAINERS:
            inner = _rebuild(data, payload_start, payload_end, sinf_of, b"")
            parts.append(box(kind, inner, moov_tail if kind == b"moov" else b""))
        elif kind == b"stsd":
            parts.append(box(kind, _protected_entries(data, payload_start, payload_end, sinf_of)))
        else:
            parts.append(data[box_start:payload_end])
        box_start = payload_end
    return b"".join(parts)


def protect_init(init: bytes, *, scheme: Scheme, key_id: bytes, constant_iv: bytes, pssh_boxes: list[bytes]) -> bytes:
    """The init segment of the protected track: ``encv``/``enca`` + ``sinf``, and the ``pssh`` boxes."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}")

    def sinf_of(original: bytes) -> bytes:
        video = _PROTECTED_ENTRY[original] == b"encv"
        schm = full_box(b"schm", 0, 0, scheme.encode(), struct.pack(">I", 0x00010000))
        return box(b"sinf", box(b"frma", original), schm, box(b"schi", _tenc(scheme, key_id, constant_iv, video)))

    return _rebuild(init, 0, len(init), sinf_of, b"".join(pssh_boxes))


def avc_subsamples(sample: bytes, *, length_size: int, scheme: Scheme) -> list[Subsample]:
    """The clear/protected map of one AVC sample (NAL units with ``length_size``-byte prefixes)."""
    result: list[Subsample] = []
    clear, offset = 0, 0
    while offset < len(sample):
        if offset + length_size > len(sample):
            raise Mp4Error("truncated NAL unit length in a video sample")
        size = int.from_bytes(sample[offset : offset + length_size], "big")
        if size == 0 or offset + length_size + size > len(sample):
            raise Mp4Error("a NAL unit runs past the end of its sample")
        nal_type = sample[offset + length_size] & 0x1F
        protected = size - CLEAR_SLICE_LEAD if nal_type in SLICE_TYPES else 0
        if scheme == "cenc":
            protected -= max(protected, 0) % 16
        if protected < 16:
            protected = 0
        clear += length_size + size - protected
        while clear > MAX_CLEAR:
            result.append(Subsample(MAX_CLEAR, 0))
            clear -= MAX_CLEAR
        if protected:
            result.append(Subsample(clear, protected))
            clear = 0
        offset += length_size + size
    if clear or not result:
        result.append(Subsample(clear, 0))
    return result


def _ctr(key: bytes, iv8: bytes, sample: bytes, subsamples: list[Subsample] | None) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv8 + bytes(8))).encryptor()
    if subsamples is None:
        return encryptor.update(sample) + encryptor.finalize()
    out, offset = bytearray(), 0
    for part in subsamples:  # one keystream across the protected parts of a sample
        out += sample[offset : offset + part.clear]
        offset += part.clear
        out += encryptor.update(sample[offset : offset + part.protected])
        offset += part.protected
    return bytes(out)


def _cbc_pattern(key: bytes, iv: bytes, data: bytes, crypt: int, skip: int) -> bytes:
    """The encrypted blocks (``crypt`` of every ``crypt + skip``, or all with no ``skip``)
    form one CBC chain from ``iv``; skipped blocks and a trailing partial block stay clear."""
    blocks = [index for index in range(len(data) // 16) if not skip or index % (crypt + skip) < crypt]
    if not blocks:
        return data
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    cipher = encryptor.update(b"".join(data[16 * i : 16 * i + 16] for i in blocks)) + encryptor.finalize()
    out = bytearray(data)
    for position, index in enumerate(blocks):
        out[16 * index : 16 * index + 16] = cipher[16 * position : 16 * position + 16]
    return bytes(out)


def _cbcs(key: bytes, iv: bytes, sample: bytes, subsamples: list[Subsample] | None) -> bytes:
    if subsamples is None:
        return _cbc_pattern(key, iv, sample, 1, 0)
    out, offset = bytearray(), 0
    for part in subsamples:
        out += sample[offset : offset + part.clear]
        offset += part.clear
        out += _cbc_pattern(key, iv, sample[offset : offset + part.protected], *PATTERN)
        offset += part.protected
    return bytes(out)


def sample_iv_start(key: bytes, track: str) -> int:
    """The 64-bit start of a track's ``cenc`` sample IVs under a key (pure, deterministic, so
    every replica writes the same bytes)."""
    return int.from_bytes(hashlib.sha256(b"kubecast sample iv" + key + track.encode()).digest()[:8], "big")


def protect_segment(
    segment: bytes,
    *,
    scheme: Scheme,
    key: bytes,
    constant_iv: bytes,
    video: bool,
    nal_length_size: int = 4,
    iv_start: int = 0,
) -> bytes:
    """A clear one-track media segment (``styp`` + ``moof`` + ``mdat``) in ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}")
    stream = BoxStream()
    boxes = dict(stream.feed(segment))
    if stream.pending or b"moof" not in boxes or b"mdat" not in boxes:
        raise Mp4Error("a media segment needs a moof and an mdat box")
    moof = boxes[b"moof"]
    tracks = parse_fragment(moof, boxes[b"mdat"])
    if len(tracks) != 1:
        raise Mp4Error("one track per segment expected")
    ((track_id, samples),) = tracks.items()
    if not samples:
        raise Mp4Error("a media segment without samples")
    mfhd = next((s for k, s, _e in iter_boxes(moof, 8) if k == b"mfhd"), None)
    sequence = struct.unpack_from(">I", moof, mfhd + 4)[0] if mfhd is not None else 0
    entries, payload = [], []
    for sample in samples:
        subsamples = avc_subsamples(sample.data, length_size=nal_length_size, scheme=scheme) if video else None
        if scheme == "cenc":
            iv8 = ((iv_start + sample.decode_time) % (1 << 64)).to_bytes(8, "big")
            payload.append(_ctr(key, iv8, sample.data, subsamples))
            entry = iv8
        else:
            payload.append(_cbcs(key, constant_iv, sample.data, subsamples))
            entry = b""
        if subsamples is not None:
            entry += struct.pack(">H", len(subsamples)) + b"".join(
                struct.pack(">HI", s.clear, s.protected) for s in subsamples
            )
        entries.append(entry)
    described = [Sample(s.duration, len(s.data), s.composition_offset, s.keyframe) for s in samples]
    return media_segment(
        sequence_number=sequence,
        base_decode_time=samples[0].decode_time,
        samples=described,
        data=b"".join(payload),
        track_id=track_id,
        auxiliary=SampleAuxiliary(entries, subsamples=video),
    )
