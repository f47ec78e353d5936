"""The XMP packet a distribution copy carries: plus:DataMining, and where the artist's answer is published."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from public.answers import PLUS_NAMESPACE, Signals

_PACKET = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:plus="{plus}"
    xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/">
   <plus:DataMining>{data_mining}</plus:DataMining>
   <xmpRights:WebStatement>{web_statement}</xmpRights:WebStatement>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""

_DATA_MINING = re.compile(rb"<plus:DataMining>\s*([^<\s]+)\s*</plus:DataMining>")


def packet_for(signals: Signals, *, web_statement: str) -> bytes:
    """A read-only XMP packet (UTF-8) with the PLUS data-mining value and the track page's address."""
    return _PACKET.format(
        plus=PLUS_NAMESPACE, data_mining=escape(signals.data_mining_uri), web_statement=escape(web_statement)
    ).encode("utf-8")


def data_mining_in(packet: bytes | None) -> str | None:
    """The plus:DataMining value of a packet this module wrote, or None.

    Only our own packets are read back (to verify a copy before it is served),
    so a pattern is enough; it never hands the bytes to an XML parser.
    """
    if not packet:
        return None
    match = _DATA_MINING.search(packet)
    return match.group(1).decode("utf-8", "replace") if match else None
