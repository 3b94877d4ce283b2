"""``kubecast status``: channels and, under each, its programs with state, range and URLs."""

from timeline_fixtures import one_track_timeline

from kubecast.local.main import main_status
from kubecast.media.timeline import Timeline
from kubecast.storage import ProgramRecord, Store, layout


def timeline(state: str, numbers) -> Timeline:
    return one_track_timeline(numbers, state=state)


def put_program(store: Store, name: str, locator: str, state: str, recorded: Timeline | None) -> None:
    record = ProgramRecord(
        name=name, channel="news", locator=locator, manifest_name="show", archive_window_seconds=3600, state=state
    )
    store.put_sync(layout.program_key("news", name), record.to_json())
    store.put_sync(layout.locator_key(locator), record.to_json())
    if recorded is not None:
        store.put_sync(layout.program_timeline_key("news", name), recorded.to_json())


def test_status_lists_each_program_with_state_range_and_urls(tmp_path, capsys):
    store = Store(str(tmp_path))
    store.put_sync(layout.timeline_key("news"), timeline("live", range(40, 46)).to_json())
    put_program(store, "evening", "evening-news", "Stopped", timeline("stopped", range(10, 16)))
    put_program(store, "late", "late-news", "Running", None)
    assert main_status(["--store", str(tmp_path), "--endpoint", "http://127.0.0.1:8080/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[news] live") and lines[1] == "  preview: http://127.0.0.1:8080/preview/news/"
    evening = lines.index(
        "  program evening (/evening-news/, stopped): Stopped 2026-01-01T12:00:20Z – 2026-01-01T12:00:32Z (12s, 6 "
        "segments)"
    )
    assert lines[evening + 1].split() == ["hls:", "http://127.0.0.1:8080/evening-news/show.m3u8"]
    assert "http://127.0.0.1:8080/evening-news/show.ism/manifest(format=m3u8-aapl)" in lines[evening + 6]
    assert "  program late (/late-news/, running): Waiting: nothing recorded yet" in lines
    assert len(lines) == 2 + 2 * 9, "the channel and preview lines, then per program its line and eight URL forms"


def test_a_program_is_listed_before_its_channel_has_a_timeline(tmp_path, capsys):
    store = Store(str(tmp_path))
    put_program(store, "late", "late-news", "Running", None)
    main_status(["--store", str(tmp_path)])
    out = capsys.readouterr().out
    assert "[news] starting: no timeline yet" in out and "    hls:           /late-news/show.m3u8" in out


def test_the_cli_exits_with_the_commands_own_code(tmp_path):
    """``kubecast`` ends by os._exit after flushing (see kubecast.cli.run): the code and the
    output must be the command's own."""
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kubecast.cli", *args], capture_output=True, text=True, timeout=60)

    missing = cli("program", "stop", "nope", "--store", str(tmp_path / "store"))
    assert missing.returncode == 1 and "no program 'nope'" in missing.stdout
    usage = cli("program", "bogus", "x")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    assert cli("status", "--store", str(tmp_path / "store")).returncode == 0
    assert cli("--version").stdout.strip()
