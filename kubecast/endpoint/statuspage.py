"""Programs on the status page (``/``) and in ``/status/<channel>.json``: each one's state,
recorded range and playback URLs, found through the locators the endpoint serves."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from kubecast.api.urls import program_urls
from kubecast.media.recording import Recording, recording_of
from kubecast.storage import ProgramRecord, Store, layout

from .timelines import TimelineCache

# The stylesheet's state colours are the channel states'; a program's map onto them.
_STATE_CLASS = {"Waiting": "waiting", "Recording": "live", "Stopped": "stopped"}


@dataclass(frozen=True)
class ProgramEntry:
    record: ProgramRecord
    recording: Recording


async def program_entries(store: Store, timelines: TimelineCache, *, channel: str | None = None) -> list[ProgramEntry]:
    """The programs behind the stored locators (of one channel, if given), by name.  Records and
    timelines come through the timeline cache, so many viewers refreshing the page add one
    listing each, not a read per program."""
    entries = []
    prefix = layout.locators_prefix() + "/"
    for info in await store.list(prefix):
        locator = info.key[len(prefix) : -len(".json")]
        if not info.key.endswith(".json") or "/" in locator:
            continue
        record = await timelines.program(locator)
        if record is None or (channel is not None and record.channel != channel):
            continue
        timeline = await timelines.get_program(locator)
        entries.append(ProgramEntry(record, recording_of(timeline, program_stopped=record.state == "Stopped")))
    return sorted(entries, key=lambda entry: (entry.record.channel, entry.record.name))


def urls_of(record: ProgramRecord, base: str) -> dict[str, str]:
    return program_urls(base, locator=record.locator, manifest=record.manifest_name)


def program_document(entry: ProgramEntry, base: str) -> dict[str, Any]:
    record = entry.record
    return {
        "name": record.name,
        "channel": record.channel,
        "locator": record.locator,
        "state": record.state,
        "recording": entry.recording.to_wire(),
        "urls": urls_of(record, base),
    }


def program_table(entries: list[ProgramEntry], base: str) -> str:
    """The status page's table of programs (empty when there are none)."""
    if not entries:
        return ""
    rows = []
    for entry in entries:
        record, recording = entry.record, entry.recording
        links = " · ".join(f"<a href='{escape(url)}'>{escape(form)}</a>" for form, url in urls_of(record, base).items())
        rows.append(
            f"<tr><td>{escape(record.name)}</td><td>{escape(record.channel)}</td>"
            f"<td><span class='state {_STATE_CLASS[recording.state]}'>{recording.state}</span></td>"
            f"<td>{escape(recording.span() or '—')}</td><td>{escape(recording.amount())}</td>"
            f"<td>{links}</td></tr>"
        )
    return (
        "<table class='channels programs'><thead><tr><th>Program</th><th>Channel</th><th>Recording</th><th>Recorded "
        "range (UTC)</th>"
        f"<th>Recorded</th><th>Playback</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
