"""A DRM key server for the tests: answers DASH-IF CPIX requests as a vendor's (or SPEKE v2's) does.

Written from the CPIX and PlayReady specifications without kubecast's code: it reads the
request with ElementTree, makes a random content key per key id (the same one every time that
key id is asked for, as a real key server does), and answers per DRM system with what a vendor
gives: a Widevine ``pssh`` made by pywidevine, a PlayReady ``pssh`` holding a PlayReady Object
with a version 4.3 header (and ``ContentProtectionData`` with ``mspr:pro`` and ``cenc:pssh``),
and FairPlay's ``skd://`` URI as ``URIExtXKey``.  It refuses a request without the expected
``Authorization`` header, and records what it was asked.
"""

from __future__ import annotations

import base64
import os
import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from aiohttp import web
from pywidevine.pssh import PSSH

CPIX = "urn:dashif:org:cpix"
PSKC = "urn:ietf:params:xml:ns:keyprov:pskc"
WIDEVINE = uuid.UUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed")
PLAYREADY = uuid.UUID("9a04f079-9840-4286-ab92-e65be0885f95")
FAIRPLAY = uuid.UUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2")
PLAYREADY_LA_URL = "https://playready.keyserver.test/rightsmanager.asmx"


def playready_object(kid: uuid.UUID, scheme: str) -> bytes:
    """A PlayReady Object with one version 4.3 header naming ``kid`` (little-endian GUID, base64)."""
    algid = "AESCBC" if scheme == "cbcs" else "AESCTR"
    header = (
        '<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.3.0.0"><DATA>'
        f'<PROTECTINFO><KIDS><KID ALGID="{algid}" VALUE="{base64.b64encode(kid.bytes_le).decode()}"></KID></KIDS>'
        f"</PROTECTINFO><LA_URL>{PLAYREADY_LA_URL}</LA_URL></DATA></WRMHEADER>"
    ).encode("utf-16-le")
    record = struct.pack("<HH", 1, len(header)) + header
    return struct.pack("<IH", 6 + len(record), 1) + record


def pssh_v0(system_id: uuid.UUID, data: bytes) -> bytes:
    return struct.pack(">I4sI", 32 + len(data), b"pssh", 0) + system_id.bytes + struct.pack(">I", len(data)) + data


@dataclass
class KeyServer:
    authorization: str
    keys: dict[str, bytes] = field(default_factory=dict)  # kid (UUID text) -> content key
    ivs: dict[str, bytes] = field(default_factory=dict)
    requests: list[ET.Element] = field(default_factory=list)
    refused: int = 0
    broken: bool = False  # answer 500 (a key server having a bad day)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cpix", self.handle)
        return app

    def pssh_of(self, system_id: uuid.UUID, kid: uuid.UUID, scheme: str) -> bytes:
        if system_id == WIDEVINE:
            return base64.b64decode(PSSH.new(system_id=PSSH.SystemId.Widevine, key_ids=[kid]).dumps())
        return pssh_v0(PLAYREADY, playready_object(kid, scheme))

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.authorization:
            self.refused += 1
            return web.Response(status=401)
        if self.broken:
            return web.Response(status=500)
        root = ET.fromstring(await request.read())
        self.requests.append(root)
        schemes = {}
        for content_key in root.iter(f"{{{CPIX}}}ContentKey"):
            kid = content_key.get("kid")
            schemes[kid] = content_key.get("commonEncryptionScheme", "cenc")
            self.keys.setdefault(kid, os.urandom(16))
            if schemes[kid] == "cbcs":
                content_key.set("explicitIV", base64.b64encode(self.ivs.setdefault(kid, os.urandom(16))).decode())
            secret = ET.SubElement(ET.SubElement(content_key, f"{{{CPIX}}}Data"), f"{{{PSKC}}}Secret")
            ET.SubElement(secret, f"{{{PSKC}}}PlainValue").text = base64.b64encode(self.keys[kid]).decode()
        for system in root.iter(f"{{{CPIX}}}DRMSystem"):
            kid, system_id = uuid.UUID(system.get("kid")), uuid.UUID(system.get("systemId"))
            for child in list(system):
                system.remove(child)
            if system_id == FAIRPLAY:
                uri = f"skd://fairplay.keyserver.test/{kid.hex}"
                ET.SubElement(system, f"{{{CPIX}}}URIExtXKey").text = base64.b64encode(uri.encode()).decode()
                continue
            box = self.pssh_of(system_id, kid, schemes.get(str(kid), "cenc"))
            ET.SubElement(system, f"{{{CPIX}}}PSSH").text = base64.b64encode(box).decode()
            if system_id == PLAYREADY:
                pro = base64.b64encode(playready_object(kid, schemes.get(str(kid), "cenc"))).decode()
                data = f"<mspr:pro>{pro}</mspr:pro><cenc:pssh>{base64.b64encode(box).decode()}</cenc:pssh>"
                ET.SubElement(system, f"{{{CPIX}}}ContentProtectionData").text = base64.b64encode(
                    data.encode()
                ).decode()
        return web.Response(
            body=ET.tostring(root, encoding="UTF-8", xml_declaration=True), content_type="application/xml"
        )
