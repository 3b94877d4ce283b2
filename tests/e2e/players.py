"""The web players the browser tests drive, each started the same way on one URL.

A page is opened on the streaming endpoint's own origin (an http://127.0.0.1 origin is a secure
context, as EME needs, and no request is cross-site), the player's bundled build is loaded from
``/static/vendor/`` and pointed at the URL. The page then exposes the same four things whatever the
player: ``window.v`` (the video element), ``window.errors`` (the player's and the element's errors,
as strings), ``window.playing`` / ``window.ended`` (the element's events) and ``window.player``.

``chromium()`` launches the Debian Chromium with the flags every browser test uses.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

SCRIPTS: dict[str, tuple[str, ...]] = {
    "hls": ("hls.min.js",),
    "dash": ("dash.all.min.js",),
    "smooth": ("dash.all.min.js", "dash.mss.min.js"),  # dash.js plays Smooth with its MSS part
    "shaka": ("shaka-player.compiled.js",),
}

# Each body runs as `async (url, v, config, setup, start) => { ... }`; config is a JSON object for the player's own
# configuration (hls.js constructor options, dash.js updateSettings, Shaka's player.configure), and
# setup(player, v) runs before the player loads anything (to listen to events it sends while loading).
_START: dict[str, str] = {
    # liveSyncDurationCount, set by the user, would override the PART-HOLD-BACK a low-latency playlist states
    "hls": "const p = new Hls(config.lowLatencyMode ? config : {liveSyncDurationCount: 3, ...config});"
    " window.player = p;"
    " p.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) window.errors.push('hls.js: ' + data.details); });"
    " setup(p, v); p.loadSource(url); p.attachMedia(v);",
    "dash": "const p = dashjs.MediaPlayer().create(); window.player = p; p.updateSettings(config);"
    " p.on(dashjs.MediaPlayer.events.ERROR, (e) => window.errors.push('dash.js: ' + JSON.stringify(e.error)));"
    " setup(p, v); p.initialize(v, url, true);",
    # Shaka reports every error, recoverable or not, as an 'error' event with a numeric code
    # (shaka.util.Error.Code); load() rejects with one when the manifest cannot be played at all.
    "shaka": "shaka.polyfill.installAll(); const p = new shaka.Player(); window.player = p; p.configure(config);"
    " p.addEventListener('error', (e) => window.errors.push('shaka: ' + e.detail.code + ' ' + "
    "JSON.stringify(e.detail.data)));"
    " await p.attach(v); setup(p, v);"
    " try { await p.load(url, start === null ? undefined : start); }"
    " catch (e) { window.errors.push('shaka load: ' + e.code + ' ' + JSON.stringify(e.data)); }",
}
_START["smooth"] = _START["dash"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium(playwright: Any) -> Any:
    """Headless Chromium (Debian's) from a running ``sync_playwright()``."""
    return playwright.chromium.launch(
        executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
    )


def sync_playwright() -> Any:
    """Playwright's sync API, or a skip where it is not installed."""
    return pytest.importorskip("playwright.sync_api")


def open_player(
    page: Any,
    origin: str,
    engine: str,
    url: str,
    *,
    config: dict[str, Any] | None = None,
    setup: str = "",
    start: float | None = None,
) -> None:
    """Play ``url`` with ``engine`` ("hls", "dash", "smooth" or "shaka") in ``page``, served from ``origin``;
    ``setup`` is the body of a JS function of ``player`` and ``v`` run before the player loads ``url``;
    ``start`` (Shaka only) the position to load at, in the player's time, rather than its default."""
    assert start is None or engine == "shaka", "only Shaka's load takes a start time"
    page.goto(f"{origin}/healthz", timeout=30_000)
    for script in SCRIPTS[engine]:
        page.add_script_tag(url=f"{origin}/static/vendor/{script}")
    page.evaluate(
        "async ([url, body, config, setup, start]) => { const v = document.createElement('video'); v.muted = true;"
        " v.autoplay = true; document.body.appendChild(v); window.v = v; window.errors = [];"
        " window.playing = false; window.ended = false;"
        " v.addEventListener('error', () => window.errors.push('video: ' + (v.error && v.error.message)));"
        " v.addEventListener('playing', () => { window.playing = true; });"
        " v.addEventListener('ended', () => { window.ended = true; });"
        " const run = new Function('url', 'v', 'config', 'setup', 'start',"
        " 'return (async () => {' + body + '})();');"
        " await run(url, v, config, new Function('player', 'v', setup), start); }",
        [url, _START[engine], json.loads(json.dumps(config or {})), setup, start],
    )


# What any of the players has done so far, for the message of a wait that ran out.
STATE = (
    "() => ({time: window.v.currentTime, readyState: window.v.readyState, errors: window.errors,"
    " buffered: Array.from({length: window.v.buffered.length}, (_, i) =>"
    " [window.v.buffered.start(i), window.v.buffered.end(i)]),"
    " textTracks: Array.from(window.v.textTracks, (t) => [t.kind, t.label, t.mode, t.cues ? t.cues.length : null]),"
    " fetched: performance.getEntriesByType('resource').slice(-6).map((e) => e.name.split('/').slice(-2).join('/'))})"
)


def wait_for(page: Any, step: str, condition: str, *, timeout: float, state: str = STATE) -> Any:
    """``page.wait_for_function(condition)`` for at most ``timeout`` seconds, polled twice a second; the
    value it returned.  When the time runs out the test fails naming ``step`` and what ``state`` (a JS
    function) read from the page, so a failure says where the player stopped."""
    sync_api = sync_playwright()
    try:
        return page.wait_for_function(condition, timeout=timeout * 1000, polling=500).json_value()
    except sync_api.TimeoutError:
        pytest.fail(f"no {step} within {timeout:.0f} s: {page.evaluate(state)}")
