"""Options shared by the commands and the console: load, processes, saving, and output checks."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from stressdeck.core import option_values
from stressdeck.core.errors import InputError
from stressdeck.core.files import refuse_unwritable
from stressdeck.core.text import printable
from stressdeck.core.units import parse_duration
from stressdeck.engine import Plan, build_plan
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import DEFAULT_CONNECTIONS, DEFAULT_MAX_DURATION, MAX_RATE, MAX_USERS
from stressdeck.engine.processes import resolve_processes
from stressdeck.profiles.adhoc import looks_like_url, url_profile
from stressdeck.profiles.presets import PRESETS
from stressdeck.profiles.profile import CLIENTS, SUFFIXES, Profile, load_profile

if TYPE_CHECKING:
    from stressdeck.engine.runner import WorkerFactory
    from stressdeck.engine.serve_metrics import MetricsServer


def add_processes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processes",
        type=option_values.processes,
        default="auto",
        metavar="N|auto",
        help="worker processes sending the load (default auto: one per core; with --cluster, "
        "workers over the whole cluster, one per free CPU)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help='run the workers on a Ray cluster: "auto" (RAY_ADDRESS) or HOST:PORT '
        "(needs pip install 'stressdeck[cluster]')",
    )


@contextmanager
def worker_placement(args: argparse.Namespace) -> Iterator[tuple[int, WorkerFactory | None]]:
    """How many workers and where: this machine, or a Ray cluster with ``--cluster``.

    Ray is imported only for ``--cluster``; the cluster is left when the block ends, and
    every actor of the run with it."""
    address = getattr(args, "cluster", None)
    processes = getattr(args, "processes", "auto")
    if address is None:
        yield resolve_processes(processes), None
        return
    from stressdeck.engine.cluster import connect  # Ray's side, only for --cluster

    placement = connect(address)
    try:
        workers = placement.plan_workers(None if processes == "auto" else int(processes))
        for note in placement.notes:
            print(f"note: {printable(note)}", file=sys.stderr, flush=True)
        yield workers, placement
    finally:
        placement.close()


def add_i_know_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--i-know",
        action="store_true",
        help=f"lift the safety caps ({MAX_USERS:,} users, {MAX_RATE:,.0f} requests/s)",
    )


def add_serve_metrics_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serve-metrics",
        metavar="[HOST:]PORT",
        help="serve the run's live figures for Prometheus on http://HOST:PORT/metrics "
        "(host 127.0.0.1 unless given)",
    )


def metrics_server_from(args: argparse.Namespace) -> MetricsServer | None:
    """The --serve-metrics server, listening already; raises InputError (bad value, port taken)."""
    listen = getattr(args, "serve_metrics", None)
    if listen is None:
        return None
    # Imported only when asked for: the console and the headless run start without it.
    from stressdeck.engine.serve_metrics import MetricsServer, parse_listen

    return MetricsServer(*parse_listen(listen)).start()


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Options that override a profile's load, shared by `run` and the console."""
    parser.add_argument("--base-url", help="send to this base URL instead of the profile's")
    parser.add_argument(
        "--users",
        type=option_values.positive_int,
        help="virtual users; selects the closed model",
    )
    parser.add_argument(
        "--rate",
        type=option_values.positive_float,
        help="requests per second; selects the open model (refused with --model closed)",
    )
    parser.add_argument(
        "--model",
        choices=("closed", "open"),
        help="load model (default: the one --users or --rate belongs to, else the profile's)",
    )
    parser.add_argument(
        "--connections",
        type=option_values.positive_int,
        help=f"open model: keep-alive connections, all processes together (default {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--duration", type=option_values.duration, help='how long to run, e.g. "30s", "2m"'
    )
    parser.add_argument(
        "--requests", type=option_values.positive_int, help="stop after this many requests"
    )
    parser.add_argument(
        "--preset", choices=PRESETS, help="a named load shape (see `stressdeck presets`)"
    )
    parser.add_argument(
        "--max-duration",
        type=option_values.duration,
        default=DEFAULT_MAX_DURATION,
        help="safety cap on any run (default 10m)",
    )
    add_processes_option(parser)
    add_i_know_option(parser)
    parser.add_argument(
        "--metrics-url",
        help="the target's Prometheus endpoint, scraped every second (/path: on the target)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="SERIES",
        help='a target series to follow, e.g. "p95(http_request_duration_seconds)"; repeatable',
    )
    add_serve_metrics_option(parser)
    add_client_options(parser)


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """The HTTP client, its TLS settings and where it connects (over the profile's)."""
    parser.add_argument(
        "--connect-to",
        action="append",
        metavar="HOST:PORT:ADDR:PORT",
        help="connect to ADDR:PORT for requests to HOST:PORT, keeping the URL, Host header and "
        "TLS name (as curl; empty parts match any / keep the request's own); repeatable",
    )
    parser.add_argument(
        "--unix-socket", metavar="PATH", help="send every request over this unix socket"
    )
    parser.add_argument(
        "--local-address", metavar="IP", help="the source address of every connection"
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="send through this HTTP proxy (http://HOST:PORT; https through a CONNECT tunnel)",
    )
    parser.add_argument(
        "--proxy-from-env",
        action="store_const",
        const=True,
        help="use HTTP_PROXY, HTTPS_PROXY and NO_PROXY from the environment (off unless asked)",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        help="HTTP client: fast (httptools) for every endpoint it serves, aiohttp for all, or "
        "http2 for all (default auto)",
    )
    parser.add_argument(
        "--http2",
        dest="client",
        action="store_const",
        const="http2",
        help="send every request over HTTP/2 (same as --client http2): ALPN over https, "
        "prior knowledge (h2c) over http",
    )
    parser.add_argument(
        "--tls-ca", dest="tls_ca_file", metavar="FILE", help="CA bundle to verify with"
    )
    parser.add_argument(
        "--tls-cert", dest="tls_cert_file", metavar="FILE", help="client certificate (mutual TLS)"
    )
    parser.add_argument("--tls-key", dest="tls_key_file", metavar="FILE", help="its private key")
    parser.add_argument(
        "--tls-key-password-env",
        metavar="VAR",
        help="the environment variable holding the key's passphrase",
    )
    parser.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="the name to verify the server's certificate for (when the URL holds an address)",
    )


def _duration_ms(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds < 0:
        raise argparse.ArgumentTypeError(f'expected a duration like "1ms" or "500us", got {text!r}')
    return seconds * 1000


def add_save_options(parser: argparse.ArgumentParser, *, repeat: bool = True) -> None:
    """--save, --force, --keep-secrets; and --repeat where a command can run again and again
    (find-limit is one search: it has no --repeat)."""
    parser.add_argument(
        "--save",
        metavar="FILE",
        help="save the session (.toml or .json)"
        + ("; with --repeat, a directory for the sessions" if repeat else ""),
    )
    if repeat:
        parser.add_argument(
            "--repeat",
            type=_positive_count,
            default=1,
            metavar="N",
            help="run N times, one after the other, each saved in the --save directory "
            "(for compare DIR_A -- DIR_B)",
        )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing --save or --json file"
    )
    parser.add_argument(
        "--keep-secrets",
        action="store_true",
        help="keep literal secret header values in the saved profile (default: redacted)",
    )


def add_url_options(parser: argparse.ArgumentParser) -> None:
    """For a URL given instead of a profile: the request, as curl's options say it."""
    group = parser.add_argument_group("a URL instead of a profile (as curl takes them)")
    group.add_argument("-X", "--method", default="GET", help="HTTP method (default GET)")
    group.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar='"NAME: VALUE"',
        help="a request header; repeatable",
    )
    group.add_argument("-d", "--body", "--data", dest="body", help="the request body")


def profile_from_args(args: argparse.Namespace, profile: str) -> Profile:
    """The profile file, or a one-endpoint profile when ``profile`` is a URL; raises InputError."""
    if looks_like_url(profile):
        return url_profile(
            profile,
            getattr(args, "method", "GET"),
            getattr(args, "headers", ()),
            getattr(args, "body", None),
        )
    given = [f for f in ("headers", "body") if getattr(args, f, None)]
    if given or getattr(args, "method", "GET").upper() != "GET":
        raise InputError(profile, "", "--method, -H and --body go with a URL, not a profile")
    return load_profile(profile)


def plan_from_args(args: argparse.Namespace, profile_path: str) -> Plan:
    return build_plan(
        profile_from_args(args, profile_path),
        Overrides.from_args(args),
        max_duration=args.max_duration,
        i_know=args.i_know,
    )


def check_output_paths(args: argparse.Namespace) -> None:
    """Refuse a --save or --json that cannot be written before the run, not after it.

    Either one that exists is kept unless --force; a link at either path is never
    followed, --force or not.
    """
    save = getattr(args, "save", None)
    if getattr(args, "repeat", 1) > 1:
        check_repeat(args)
        return
    if save:
        path = Path(save)
        if path.suffix.lower() not in SUFFIXES:
            raise InputError(
                "--save", "", f"expected a .toml or .json file name, got {printable(save)}"
            )
    for option, wanted in (("--save", save), ("--json", getattr(args, "json_file", None))):
        refuse_output(option, wanted, force=bool(getattr(args, "force", False)))


def refuse_output(option: str, path: str | None, *, force: bool) -> None:
    """Refuse, before any work, an output file that cannot be written (a link, a directory,
    a parent in the way) or that exists without ``force``."""
    refuse_unwritable(option, path)
    if path and _is_file(path) and not force:
        raise InputError(option, "", f"{printable(path)} already exists (use --force to overwrite)")


REPEAT_NAME = "{stem}-{index:02d}.toml"


def repeat_paths(args: argparse.Namespace, stem: str) -> list[Path]:
    """Where the sessions of ``--repeat N --save DIR`` go: DIR/run-01.toml..."""
    return [
        Path(args.save) / REPEAT_NAME.format(stem=stem, index=i) for i in range(1, args.repeat + 1)
    ]


def check_repeat(args: argparse.Namespace) -> None:
    """--repeat N needs a --save directory (made if missing) and no --json (one file for N
    runs); sessions already there are kept unless --force."""
    save = getattr(args, "save", None)
    if not save:
        raise InputError("--repeat", "", "expected --save DIR for the sessions of the runs")
    if Path(save).suffix.lower() in SUFFIXES:
        raise InputError(
            "--save", "", f"expected a directory with --repeat, got the file name {printable(save)}"
        )
    if getattr(args, "json_file", None):
        raise InputError("--json", "", "expected one run; with --repeat the sessions hold results")
    try:
        Path(save).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            "--save", "", f"cannot make the directory {printable(save)}: {exc.strerror}"
        ) from None
    stem = "replay" if getattr(args, "session", None) else "run"
    for path in repeat_paths(args, stem):
        if os.path.lexists(path) and not getattr(args, "force", False):
            raise InputError(
                "--save", "", f"{printable(path)} already exists (use --force to overwrite)"
            )


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _is_file(path: str) -> bool:
    """A regular file is there (``/dev/stdout`` and friends are streams, written freely)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
