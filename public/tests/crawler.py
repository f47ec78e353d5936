"""Crawler-side readers for the tests: each reads one channel the way an independent crawler would.

Deliberately independent of public/: the names and vocabularies come from
the standards, the parsing from other libraries (http.client and email for
headers, http_sf for Structured Fields, protego for robots.txt groups, the
stdlib HTML parser, mutagen and plain box/chunk walking for the files,
c2pa's Reader for manifests). A reader answers "granted", "reserved", or
"absent" when the channel has nothing for the URL.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import struct
import uuid
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import c2pa
import http_sf
from protego import Protego

GRANTED, RESERVED, ABSENT = "granted", "reserved", "absent"
PLUS = "{http://ns.useplus.org/ldf/xmp/1.0/}"
XMP_UUID = uuid.UUID("be7acfcb-97a9-42e8-9c71-999491e3afac").bytes
MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "m4a": "audio/mp4"}
TRAINING_MINING_USES = ("ai_generative_training", "ai_training", "ai_inference", "data_mining")


@dataclass
class Fetched:
    status: int
    headers: Message  # case-insensitive, as any HTTP client's
    body: bytes


def fetch(base_url: str, path: str, *, method: str = "GET", headers: dict | None = None) -> Fetched:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Fetched(response.status, as_message(response.getheaders()), body)
    finally:
        connection.close()


# --- HTTP headers -------------------------------------------------------------------------------


def as_message(pairs) -> Message:
    """Response fields as a case-insensitive header block (as any HTTP client gives them)."""
    message = Message()
    for name, value in pairs:
        message[name] = value
    return message


def from_headers(headers) -> dict[str, str]:
    """The answer each response field gives, keyed by signal."""
    if not isinstance(headers, Message):
        headers = as_message(headers.items())
    answers = {}
    tdm = headers.get("TDM-Reservation")
    answers["tdm-reservation header"] = {"1": RESERVED, "0": GRANTED}.get((tdm or "").strip(), ABSENT)
    usage = headers.get("content-usage")
    answers["Content-Usage header"] = _train_ai(usage.encode()) if usage else ABSENT
    tokens = {
        token.strip().lower()
        for line in headers.get_all("x-robots-tag") or []
        for token in line.split(",")
        if token.strip()
    }
    answers["X-Robots-Tag header"] = RESERVED if {"noai", "noimageai"} <= tokens else GRANTED
    if len(headers.get_all("x-robots-tag") or []) > 1:
        answers["X-Robots-Tag header"] = "several lines"
    return answers


def _train_ai(value: bytes) -> str:
    parsed = http_sf.parse(value, tltype="dictionary")
    if not isinstance(parsed, dict):
        return ABSENT
    member = parsed.get("train-ai")
    if not isinstance(member, tuple) or not isinstance(member[0], http_sf.Token):
        return ABSENT
    return {"y": GRANTED, "n": RESERVED}.get(str(member[0]), ABSENT)


# --- HTML meta ----------------------------------------------------------------------------------


class _MetaParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.meta: dict[str, list[str]] = {}
        self.in_head = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "meta" and values.get("name"):
            self.meta.setdefault(values["name"].lower(), []).append(values.get("content") or "")


def from_meta(html: str) -> dict[str, str]:
    parser = _MetaParser()
    parser.feed(html)
    tdm = parser.meta.get("tdm-reservation", [])
    robots = {t.strip().lower() for value in parser.meta.get("robots", []) for t in value.split(",")}
    return {
        "tdm-reservation meta": {"1": RESERVED, "0": GRANTED}.get(tdm[0] if len(tdm) == 1 else "", ABSENT),
        "robots meta": RESERVED if {"noai", "noimageai"} <= robots else GRANTED,
        "tdm-policy meta present": "yes" if parser.meta.get("tdm-policy") else "no",
    }


# --- robots.txt with Content-Usage (IETF aipref attachment) --------------------------------------


def _groups(text: str) -> list[tuple[set[str], list[tuple[str, str]]]]:
    """RFC 9309 groups: consecutive user-agent lines, then the rules until the next user-agent after a rule."""
    groups: list[tuple[set[str], list[tuple[str, str]]]] = []
    agents: set[str] = set()
    rules: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        field, value = (part.strip() for part in line.split(":", 1))
        field = field.lower()
        if field == "user-agent":
            if rules:
                groups.append((agents, rules))
                agents, rules = set(), []
            agents.add(value.lower())
        elif agents:
            rules.append((field, value))
    if agents:
        groups.append((agents, rules))
    return groups


def content_usage(text: str, agent: str, path: str) -> str:
    """The usage preference for `path` by the longest matching Content-Usage rule of the agent's group."""
    groups = _groups(text)
    chosen = [rules for agents, rules in groups if agent.lower() in agents] or [
        rules for agents, rules in groups if "*" in agents
    ]
    best_length, best = -1, ABSENT
    for rules in chosen:
        for field, value in rules:
            if field != "content-usage":
                continue
            rule_path, preference = [*value.split(None, 1), ""][:2] if value.startswith("/") else ("", value)
            if path.startswith(rule_path) and len(rule_path) > best_length:
                best_length, best = len(rule_path), _train_ai(preference.encode())
    return best


def from_robots(text: str, path: str, url: str) -> dict[str, str]:
    parser = Protego.parse(text)
    answers = {"robots.txt Content-Usage (*)": content_usage(text, "SomeCrawler", path)}
    for agent in ("GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Applebot-Extended", "PerplexityBot"):
        answers[f"robots.txt {agent} may fetch"] = GRANTED if parser.can_fetch(url, agent) else RESERVED
        if parser.can_fetch(url, agent):
            answers[f"robots.txt Content-Usage ({agent})"] = content_usage(text, agent, path)
    return answers


def from_ai_txt(text: str, url: str) -> dict[str, str]:
    """Spawning's ai.txt: robots.txt syntax, where allowed means usable for AI training."""
    return {"ai.txt": GRANTED if Protego.parse(text).can_fetch(url, "*") else RESERVED}


# --- tdmrep.json (W3C TDMRep) ---------------------------------------------------------------------


def _pattern(location: str) -> re.Pattern:
    anchored = location.endswith("$")
    body = re.escape(location[:-1] if anchored else location).replace(r"\*", ".*")
    return re.compile(body + ("$" if anchored else ""))


def from_tdmrep(text: str, path: str) -> dict[str, str]:
    rules = json.loads(text)
    assert isinstance(rules, list), "tdmrep.json must be a JSON array"
    for rule in rules:
        if _pattern(rule["location"]).match(path):
            return {"tdmrep.json": {1: RESERVED, 0: GRANTED}.get(rule["tdm-reservation"], ABSENT)}
    return {"tdmrep.json": ABSENT}


# --- Inside the file ----------------------------------------------------------------------------


def _xmp_mp3(data: bytes) -> bytes | None:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        frames = ID3(io.BytesIO(data)).getall("PRIV")
    except ID3NoHeaderError:
        return None
    return next((bytes(f.data) for f in frames if f.owner == "XMP"), None)


def _xmp_wav(data: bytes) -> bytes | None:
    pos = 12
    while pos + 8 <= len(data):
        kind, size = struct.unpack("<4sI", data[pos : pos + 8])
        if kind == b"_PMX":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    return None


def _xmp_m4a(data: bytes) -> bytes | None:
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        if kind == b"uuid" and data[pos + header : pos + header + 16] == XMP_UUID:
            return data[pos + header + 16 : pos + size]
        pos += size
    return None


def from_file(data: bytes, format_key: str) -> dict[str, str]:
    answers = {}
    reader = {"mp3": _xmp_mp3, "wav": _xmp_wav, "m4a": _xmp_m4a}.get(format_key)
    if reader:
        packet = reader(data)
        mining = None
        if packet:
            element = ElementTree.fromstring(packet)  # noqa: S314 -- a file these tests made
            found = element.find(f".//{PLUS}DataMining")
            mining = found.text.strip() if found is not None and found.text else None
        answers["XMP plus:DataMining"] = {
            "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING": RESERVED,
            "http://ns.useplus.org/ldf/vocab/DMI-ALLOWED": GRANTED,
        }.get(mining or "", ABSENT)
    if format_key in MIME:
        answers.update(_c2pa(data, format_key))
    return answers


def _c2pa(data: bytes, format_key: str) -> dict[str, str]:
    context = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    try:
        with c2pa.Reader(MIME[format_key], io.BytesIO(data), context=context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError:
        return {"C2PA cawg.training-mining": ABSENT, "C2PA c2pa.training-mining": ABSENT}
    manifest = store["manifests"][store["active_manifest"]]
    answers: dict[str, str] = {}
    for label in ("cawg.training-mining", "c2pa.training-mining"):
        prefix = label.split(".")[0]
        entries: dict[str, Any] = next(
            (a["data"]["entries"] for a in manifest["assertions"] if a["label"] == label), {}
        )
        uses = {entries.get(f"{prefix}.{use}", {}).get("use") for use in TRAINING_MINING_USES}
        answers[f"C2PA {label}"] = {
            frozenset({"notAllowed"}): RESERVED,
            frozenset({"allowed"}): GRANTED,
        }.get(frozenset(uses), f"mixed {sorted(map(str, uses))}")
    return answers
