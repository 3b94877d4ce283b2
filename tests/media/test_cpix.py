"""CPIX documents (pure): what kubecast asks a key server, and which answers it refuses, and why."""

from __future__ import annotations

import base64
import struct
import uuid
import xml.etree.ElementTree as ET

import pytest

from kubecast.media.cpix import CPIX_NS, PSKC_NS, CpixError, DrmSignal, DrmSystem, cpix_request, parse_cpix_answer

KID = bytes(range(16))
KEY = bytes(range(100, 116))
C = f"{{{CPIX_NS}}}"


def pssh(system: uuid.UUID, data: bytes = b"data", version: int = 0) -> bytes:
    kids = struct.pack(">I", 1) + KID if version else b""
    body = struct.pack(">I", version << 24) + system.bytes + kids + struct.pack(">I", len(data)) + data
    return struct.pack(">I4s", 8 + len(body), b"pssh") + body


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


KID_UUID = uuid.UUID(bytes=KID)


def answer(
    *,
    key: str = b64(KEY),
    kid: uuid.UUID = KID_UUID,
    systems: str | None = None,
    value: str = "PlainValue",
    iv: str = "",
) -> bytes:
    widevine = f'<cpix:PSSH>{b64(pssh(DrmSystem.WIDEVINE.system_id))}</cpix:PSSH>'
    systems = (
        systems
        if systems is not None
        else (f'<cpix:DRMSystem kid="{kid}" systemId="{DrmSystem.WIDEVINE.system_id}">{widevine}</cpix:DRMSystem>')
    )
    return (
        f'<?xml version="1.0"?><cpix:CPIX xmlns:cpix="{CPIX_NS}" xmlns:pskc="{PSKC_NS}" contentId="news">'
        '<cpix:ContentKeyList><cpix:ContentKey '
        f'kid="{kid}"{iv}><cpix:Data><pskc:Secret><pskc:{value}>{key}</pskc:{value}>'
        f'</pskc:Secret></cpix:Data></cpix:ContentKey></cpix:ContentKeyList><cpix:DRMSystemList>{systems}</cpix:DRMSystemList></cpix:CPIX>'
    ).encode()


def test_the_request_names_the_content_the_key_id_the_scheme_and_each_system():
    root = ET.fromstring(
        cpix_request(content_id="news", key_id=KID, scheme="cbcs", systems=[DrmSystem.WIDEVINE, DrmSystem.FAIRPLAY])
    )
    assert root.tag == f"{C}CPIX" and root.get("contentId") == "news" and root.get("version") == "2.3"
    (key,) = root.iter(f"{C}ContentKey")
    assert key.get("kid") == str(uuid.UUID(bytes=KID)) and key.get("commonEncryptionScheme") == "cbcs"
    assert [s.get("systemId") for s in root.iter(f"{C}DRMSystem")] == [
        "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
        "94ce86fb-07ff-4f43-adb8-93d2fa968ca2",
    ]
    assert [c.tag for c in next(root.iter(f"{C}DRMSystem"))] == [
        f"{C}PSSH",
        f"{C}ContentProtectionData",
        f"{C}URIExtXKey",
    ]
    assert next(root.iter(f"{C}ContentKeyUsageRule")).get("intendedTrackType") == "ALL"


def test_an_answer_gives_the_key_its_iv_and_each_systems_signalling():
    iv = bytes(range(50, 66))
    found = parse_cpix_answer(answer(iv=f' explicitIV="{b64(iv)}"'), key_id=KID, systems=[DrmSystem.WIDEVINE])
    assert found.key == KEY and found.explicit_iv == iv and found.key_id == KID
    assert found.signals == (DrmSignal(DrmSystem.WIDEVINE, pssh(DrmSystem.WIDEVINE.system_id)),)
    assert found.signals[0].pssh_data == b"data"
    assert KEY.hex() not in repr(found) and str(list(KEY)) not in repr(found), "a key is never printed"
    assert DrmSignal(DrmSystem.PLAYREADY, pssh(DrmSystem.PLAYREADY.system_id, b"pro", version=1)).pssh_data == b"pro"


def fairplay(uri: str) -> str:
    return (
        f'<cpix:DRMSystem kid="{uuid.UUID(bytes=KID)}" systemId="{DrmSystem.FAIRPLAY.system_id}">'
        f'<cpix:URIExtXKey>{b64(uri)}</cpix:URIExtXKey></cpix:DRMSystem>'
    )


def playready(data: str) -> str:
    return (
        f'<cpix:DRMSystem kid="{uuid.UUID(bytes=KID)}" systemId="{DrmSystem.PLAYREADY.system_id}">'
        f'<cpix:PSSH>{b64(pssh(DrmSystem.PLAYREADY.system_id))}</cpix:PSSH>'
        f'<cpix:ContentProtectionData>{b64(data)}</cpix:ContentProtectionData></cpix:DRMSystem>'
    )


def test_fairplay_comes_as_a_uri_and_playready_with_mpd_xml():
    both = fairplay("skd://key/1") + playready("<mspr:pro>AAAA</mspr:pro><cenc:pssh>AAAA</cenc:pssh>")
    found = parse_cpix_answer(answer(systems=both), key_id=KID, systems=[DrmSystem.FAIRPLAY, DrmSystem.PLAYREADY])
    assert found.signals[0].uri_ext_x_key == "skd://key/1" and found.signals[0].pssh is None
    assert found.signals[1].content_protection_data == "<mspr:pro>AAAA</mspr:pro><cenc:pssh>AAAA</cenc:pssh>"


@pytest.mark.parametrize(
    ("document", "systems", "reason"),
    [
        (b"not xml", [], "not XML"),
        (b"<other/>", [], "not a CPIX document"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', [], "DTD"),
        (answer(kid=uuid.UUID(int=7)), [], "no content key"),
        (answer(key=""), [], "has no value"),
        (answer(key=b64(bytes(8))), [], "8 bytes, not 16"),
        (answer(key="!!"), [], "not base64"),
        (answer(value="EncryptedValue"), [], "encrypted"),
        (answer(iv=' explicitIV="AAAA"'), [], "explicitIV is not 16 bytes"),
        (answer(), [DrmSystem.PLAYREADY], "no DRMSystem for PlayReady"),
        (
            answer(
                systems=playready("<x/>").replace(str(DrmSystem.PLAYREADY.system_id), str(DrmSystem.WIDEVINE.system_id))
            ),
            [DrmSystem.WIDEVINE],
            "carries system id 9a04f079",
        ),
        (answer(systems=playready("<mspr:pro>")), [DrmSystem.PLAYREADY], "not well-formed"),
        (answer(systems=playready("<evil:x/>")), [DrmSystem.PLAYREADY], "not well-formed"),
        (answer(systems=playready("<!ENTITY a 'b'>")), [DrmSystem.PLAYREADY], "DTD"),
        (answer(systems=fairplay('skd://"injected')), [DrmSystem.FAIRPLAY], "cannot be an EXT-X-KEY URI"),
        (answer(systems=fairplay("skd://a\n#EXT-X-ENDLIST")), [DrmSystem.FAIRPLAY], "cannot be an EXT-X-KEY URI"),
        (
            answer(systems=f'<cpix:DRMSystem kid="{uuid.UUID(bytes=KID)}" systemId="{DrmSystem.FAIRPLAY.system_id}"/>'),
            [DrmSystem.FAIRPLAY],
            "neither a PSSH nor a URIExtXKey",
        ),
    ],
)
def test_unusable_answers_are_refused_with_a_reason(document, systems, reason):
    with pytest.raises(CpixError, match=reason) as error:
        parse_cpix_answer(document, key_id=KID, systems=systems)
    assert KEY.hex() not in str(error.value) and b64(KEY) not in str(error.value)
