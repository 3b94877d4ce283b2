"""DASH-IF CPIX documents: the content keys and DRM signalling a key server gives a packager.

CPIX (Content Protection Information Exchange, DASH-IF, version 2.3) is the document that
AWS SPEKE v2 and the commercial DRM vendors' key servers speak.  kubecast is the packager: it
names the content (the channel), the key id it will encrypt with (derived, so every endpoint
replica asks for the same one), the Common Encryption scheme and the DRM systems it wants
signalled; the key server answers with the content key and, per DRM system, what players need
to find a licence: a ``pssh`` box (init segments, the MPD's ``cenc:pssh``), optional
``ContentProtectionData`` (XML to put inside the MPD's ``ContentProtection`` element, such as
PlayReady's ``mspr:pro``) and an optional ``URIExtXKey`` (the HLS ``EXT-X-KEY`` URI, FairPlay's
``skd://…``).

Only plain content keys (``pskc:PlainValue``, over HTTPS) are read: an answer with encrypted
keys (a CPIX ``DeliveryData``/``DocumentKey``) is refused with a clear error rather than
misread.  Documents with a DTD are refused before parsing (no entity expansion from a peer).
"""

from __future__ import annotations

import base64
import binascii
import enum
import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

CPIX_NS = "urn:dashif:org:cpix"
PSKC_NS = "urn:ietf:params:xml:ns:keyprov:pskc"
CPIX_VERSION = "2.3"
# Namespaces ContentProtectionData may use: it lands inside an MPD that declares them.
MPD_SIGNALLING_NAMESPACES = {"cenc": "urn:mpeg:cenc:2013", "mspr": "urn:microsoft:playready"}
MAX_DOCUMENT = 1 << 20

ET.register_namespace("cpix", CPIX_NS)
ET.register_namespace("pskc", PSKC_NS)


class DrmSystem(str, enum.Enum):
    """The commercial DRM systems kubecast signals, by their DASH-IF system ids."""

    WIDEVINE = "Widevine"
    PLAYREADY = "PlayReady"
    FAIRPLAY = "FairPlay"

    @property
    def system_id(self) -> uuid.UUID:
        return SYSTEM_IDS[self]

    @property
    def hls_key_format(self) -> str:
        """``KEYFORMAT`` of this system's ``EXT-X-KEY`` line."""
        return HLS_KEY_FORMATS[self]

    @property
    def dash_value(self) -> str:
        """``value`` of this system's MPD ``ContentProtection`` element (informative, by convention)."""
        return {DrmSystem.WIDEVINE: "Widevine", DrmSystem.PLAYREADY: "MSPR 2.0", DrmSystem.FAIRPLAY: "FairPlay"}[self]


SYSTEM_IDS = {
    DrmSystem.WIDEVINE: uuid.UUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"),
    DrmSystem.PLAYREADY: uuid.UUID("9a04f079-9840-4286-ab92-e65be0885f95"),
    DrmSystem.FAIRPLAY: uuid.UUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2"),
}
HLS_KEY_FORMATS = {
    DrmSystem.WIDEVINE: f"urn:uuid:{SYSTEM_IDS[DrmSystem.WIDEVINE]}",
    DrmSystem.PLAYREADY: "com.microsoft.playready",
    DrmSystem.FAIRPLAY: "com.apple.streamingkeydelivery",
}


class CpixError(ValueError):
    """A CPIX answer that cannot be used (says why, never with a key in the message)."""


@dataclass(frozen=True)
class DrmSignal:
    """What the key server gave for one DRM system."""

    system: DrmSystem
    pssh: bytes | None = None  # a whole ``pssh`` box
    content_protection_data: str | None = None  # XML children of the MPD's ContentProtection element
    uri_ext_x_key: str | None = None  # the HLS EXT-X-KEY URI

    @property
    def pssh_data(self) -> bytes:
        """The system-specific data inside the ``pssh`` box (PlayReady: the PlayReady Object)."""
        if self.pssh is None:
            return b""
        version = self.pssh[8]
        offset = 28
        if version > 0:
            count = struct.unpack_from(">I", self.pssh, offset)[0]
            offset += 4 + 16 * count
        size = struct.unpack_from(">I", self.pssh, offset)[0]
        return self.pssh[offset + 4 : offset + 4 + size]


@dataclass(frozen=True)
class CpixAnswer:
    key_id: bytes
    key: bytes = field(repr=False)  # a content key is never printed
    explicit_iv: bytes | None = None
    signals: tuple[DrmSignal, ...] = ()


def _kid(key_id: bytes) -> str:
    return str(uuid.UUID(bytes=key_id))


def cpix_request(*, content_id: str, key_id: bytes, scheme: str, systems: list[DrmSystem]) -> bytes:
    """The CPIX document asking for the content key ``key_id`` of ``content_id`` and, for each
    of ``systems``, its ``pssh``, ``ContentProtectionData`` and ``URIExtXKey`` (SPEKE v2's shape)."""
    root = ET.Element(f"{{{CPIX_NS}}}CPIX", {"contentId": content_id, "version": CPIX_VERSION})
    keys = ET.SubElement(root, f"{{{CPIX_NS}}}ContentKeyList")
    ET.SubElement(keys, f"{{{CPIX_NS}}}ContentKey", {"kid": _kid(key_id), "commonEncryptionScheme": scheme})
    drm = ET.SubElement(root, f"{{{CPIX_NS}}}DRMSystemList")
    for system in systems:
        element = ET.SubElement(
            drm, f"{{{CPIX_NS}}}DRMSystem", {"kid": _kid(key_id), "systemId": str(system.system_id)}
        )
        for wanted in ("PSSH", "ContentProtectionData", "URIExtXKey"):
            ET.SubElement(element, f"{{{CPIX_NS}}}{wanted}")
    rules = ET.SubElement(root, f"{{{CPIX_NS}}}ContentKeyUsageRuleList")
    ET.SubElement(rules, f"{{{CPIX_NS}}}ContentKeyUsageRule", {"kid": _kid(key_id), "intendedTrackType": "ALL"})
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CpixError(f"{what} is not base64") from None


def check_pssh(data: bytes, system: DrmSystem) -> bytes:
    """``data`` if it is one whole ``pssh`` box of ``system``."""
    if len(data) < 32 or data[4:8] != b"pssh" or struct.unpack_from(">I", data)[0] != len(data):
        raise CpixError(f"the {system.value} PSSH is not one pssh box")
    if uuid.UUID(bytes=data[12:28]) != system.system_id:
        raise CpixError(f"the {system.value} PSSH carries system id {uuid.UUID(bytes=data[12:28])}")
    return data


def check_content_protection_data(xml: str, system: DrmSystem) -> str:
    """``xml`` if it is well-formed MPD content using only the ``cenc`` and ``mspr`` prefixes."""
    if "<!" in xml:
        raise CpixError(f"the {system.value} ContentProtectionData has a DTD, entity or CDATA section")
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in MPD_SIGNALLING_NAMESPACES.items())
    try:
        ET.fromstring(f"<signalling {declarations}>{xml}</signalling>")
    except ET.ParseError as error:
        raise CpixError(f"the {system.value} ContentProtectionData is not well-formed MPD XML: {error}") from None
    return xml


def _signal(element: ET.Element, system: DrmSystem) -> DrmSignal:
    pssh_text = element.findtext(f"{{{CPIX_NS}}}PSSH")
    data_text = element.findtext(f"{{{CPIX_NS}}}ContentProtectionData")
    uri_text = element.findtext(f"{{{CPIX_NS}}}URIExtXKey")
    pssh = check_pssh(_b64(pssh_text, f"the {system.value} PSSH"), system) if (pssh_text or "").strip() else None
    content = None
    if (data_text or "").strip():
        try:
            decoded = _b64(data_text, f"the {system.value} ContentProtectionData").decode()
        except UnicodeDecodeError:
            raise CpixError(f"the {system.value} ContentProtectionData is not UTF-8") from None
        content = check_content_protection_data(decoded, system)
    uri = None
    if (uri_text or "").strip():
        try:
            uri = _b64(uri_text, f"the {system.value} URIExtXKey").decode()
        except UnicodeDecodeError:
            raise CpixError(f"the {system.value} URIExtXKey is not UTF-8") from None
        if not uri.isprintable() or '"' in uri or len(uri) > 8192:
            raise CpixError(f"the {system.value} URIExtXKey cannot be an EXT-X-KEY URI")
    return DrmSignal(system, pssh, content, uri)


def parse_cpix_answer(body: bytes, *, key_id: bytes, systems: list[DrmSystem]) -> CpixAnswer:
    """The content key ``key_id`` and each of ``systems``' signalling from a key server's CPIX
    answer.  Each system must come with a PSSH or a URIExtXKey (else players could not find it)."""
    if len(body) > MAX_DOCUMENT:
        raise CpixError("the CPIX answer is larger than 1 MiB")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise CpixError("the CPIX answer has a DTD")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise CpixError(f"the CPIX answer is not XML: {error}") from None
    if root.tag != f"{{{CPIX_NS}}}CPIX":
        raise CpixError(f"the answer is not a CPIX document (root element {root.tag})")
    kid = _kid(key_id)
    content_key = next((e for e in root.iter(f"{{{CPIX_NS}}}ContentKey") if e.get("kid", "").lower() == kid), None)
    if content_key is None:
        raise CpixError(f"the CPIX answer has no content key {kid}")
    secret = content_key.find(f"{{{CPIX_NS}}}Data/{{{PSKC_NS}}}Secret")
    if secret is not None and secret.find(f"{{{PSKC_NS}}}EncryptedValue") is not None:
        raise CpixError("the CPIX answer's content key is encrypted (a document key); kubecast reads plain values only")
    plain = secret.findtext(f"{{{PSKC_NS}}}PlainValue") if secret is not None else None
    if not (plain or "").strip():
        raise CpixError(f"the CPIX answer's content key {kid} has no value")
    key = _b64(plain, "the content key")
    if len(key) != 16:
        raise CpixError(f"the content key {kid} is {len(key)} bytes, not 16")
    explicit_iv = _b64(content_key.get("explicitIV"), "explicitIV") if content_key.get("explicitIV") else None
    if explicit_iv is not None and len(explicit_iv) != 16:
        raise CpixError("explicitIV is not 16 bytes")
    signals = []
    for system in systems:
        element = next(
            (
                e
                for e in root.iter(f"{{{CPIX_NS}}}DRMSystem")
                if e.get("systemId", "").lower() == str(system.system_id) and e.get("kid", "").lower() == kid
            ),
            None,
        )
        if element is None:
            raise CpixError(f"the CPIX answer has no DRMSystem for {system.value} ({system.system_id})")
        signal = _signal(element, system)
        if signal.pssh is None and signal.uri_ext_x_key is None:
            raise CpixError(f"the CPIX answer's {system.value} DRMSystem has neither a PSSH nor a URIExtXKey")
        signals.append(signal)
    return CpixAnswer(key_id, key, explicit_iv, tuple(signals))
