"""``kubecast <command>``: one entry point for every component and for local mode.

Each component's own argument parser lives beside it (``kubecast/<component>/main.py``,
function ``main(argv) -> int``); the container images and the local supervisor run the same
commands.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback

COMMANDS = {
    "demo": ("kubecast.local.main", "main_demo", "Run a built-in test channel end to end and print the player URL."),
    "up": (
        "kubecast.local.main",
        "main_up",
        "Run the pipeline for Channel/Program/StreamingEndpoint YAML on this machine.",
    ),
    "status": ("kubecast.local.main", "main_status", "Show the state of the channels in a store."),
    "channel": (
        "kubecast.local.channels",
        "main_channel",
        "Stop, start or reset a Channel of a running `kubecast up`, show or hide its slate, or cue an ad break.",
    ),
    "program": ("kubecast.local.programs", "main_program", "Start or stop a Program of a running `kubecast up`."),
    "ingest": ("kubecast.ingest.main", "main", "RTMP ingest server (forwards contributions to encoders)."),
    "encoder": ("kubecast.encoder.main", "main", "Live encoder of one channel instance (A or B)."),
    "packager": ("kubecast.packager.main", "main", "Packager of one channel: merges encoders into the timeline."),
    "endpoint": ("kubecast.endpoint.main", "main", "Streaming endpoint: HLS/DASH origin and preview pages."),
    "operator": ("kubecast.operator.main", "main", "The Kubernetes operator (kopf)."),
    "sign": ("kubecast.local.sign", "main", "Sign a URL (or make a token) for a StreamingEndpoint with signingKeys."),
    "crds": ("kubecast.operator.crds", "main", "Print the CustomResourceDefinitions generated from the models."),
    "test-pattern": ("kubecast.local.testpattern", "main", "Publish a test pattern (picture, clock, tone) over RTMP."),
}


def usage() -> str:
    lines = ["usage: kubecast <command> [options]", "", "commands:"]
    lines += [f"  {name:<13} {help_text}" for name, (_, _, help_text) in COMMANDS.items()]
    lines += ["", "Run 'kubecast <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from kubecast import __version__

        print(__version__)
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"kubecast: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = command
    function = getattr(importlib.import_module(module_name), function_name)
    return int(function(argv[1:]) or 0)


def run() -> None:
    """The process entry point: ``main``, then an exit that skips interpreter finalization.

    obstore's Rust runtime resolves Python futures from its own threads; one that lands while
    the interpreter is finalizing panics there, and a panic on that thread aborts the process
    (SIGABRT, exit 134) after the command has done its work, which a caller takes for a
    failure.  Everything a command writes is flushed first, so nothing is lost by skipping it."""
    try:
        code = main()
    except SystemExit as done:  # argparse's --help and usage errors
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        code = 141
    except BaseException:  # noqa: BLE001 - reported as Python would, then the same exit
        traceback.print_exc()
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
