"""Small commands: `import` (write a profile), `demo-server`, `presets`."""

from __future__ import annotations

import argparse
import sys

from stressdeck.core.exits import (
    EXIT_OK,
)
from stressdeck.core.text import printable
from stressdeck.observe.demo import serve_forever
from stressdeck.profiles.importers import import_command


def cmd_import(args: argparse.Namespace) -> int:
    path, warnings = import_command(
        args.kind,
        args.source,
        out=args.out,
        base_url=args.base_url,
        name=args.name,
        overwrite=args.force,
        allow_remote=args.allow_remote,
    )
    for warning in warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    print(f"profile written: {printable(path)}")
    print(f"run it with: stressdeck run {printable(path)}")
    return EXIT_OK


def cmd_demo_server(args: argparse.Namespace) -> int:
    serve_forever(args.port)
    return EXIT_OK
