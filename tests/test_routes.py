"""Routes: --connect-to (one pod behind a name), a unix socket, a source address, an HTTP proxy.
The URL, Host header and TLS name stay the profile's; the address dialled changes; the safety
check judges the address dialled and names both."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from certs import TestCA
from waiting import until

from stressdeck.core.errors import InputError
from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import remote_hosts
from stressdeck.profiles.importers import import_command, profile_from_curl
from stressdeck.profiles.profile import load_profile, parse_profile
from stressdeck.sessions.session import save_session

HTTP1 = ["fast", "aiohttp"]


class Seen:
    """What a server saw: Host headers, client addresses, SNI names, request count."""

    def __init__(self) -> None:
        self.hosts: Counter[str] = Counter()
        self.peers: Counter[str] = Counter()
        self.sni: Counter[str] = Counter()

    @property
    def count(self) -> int:
        return sum(self.hosts.values())


def recording_app(seen: Seen) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        seen.hosts[request.host] += 1
        seen.peers[str(request.remote)] += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    return app


class Server:
    """An aiohttp app on a TCP address or a unix socket, from a thread of its own."""

    def __init__(
        self,
        seen: Seen,
        *,
        host: str = "127.0.0.1",
        path: Path | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.seen, self.host, self.path, self.context = seen, host, path, context
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(recording_app(self.seen), handle_signals=False)
        self._loop.run_until_complete(runner.setup())
        site: web.BaseSite
        if self.path is not None:
            site = web.UnixSite(runner, str(self.path))
        else:
            site = web.TCPSite(runner, self.host, 0, ssl_context=self.context)
        self._loop.run_until_complete(site.start())
        if self.path is None:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def plan_for(base_url: str, tmp_path: Path, overrides: Overrides | None = None, **top: Any) -> Any:
    document = {
        "name": "routes",
        "base_url": base_url,
        "load": {"users": 2, "requests": 20},
        "endpoints": [{"name": "ok", "path": "/ok"}],
        **top,
    }
    return build_plan(
        parse_profile(document, str(tmp_path / "routes.toml")), overrides or Overrides(), env={}
    )


async def run(plan: Any) -> Snapshot:
    return await (await start(plan)).wait()


@pytest.mark.parametrize("client", HTTP1)
async def test_connect_to_sends_every_request_to_the_mapped_pod(
    tmp_path: Path, client: str
) -> None:
    pod_a, pod_b = Seen(), Seen()
    with Server(pod_a, host="127.0.0.2") as a, Server(pod_b, host="127.0.0.3") as b:
        # A name that resolves nowhere (.invalid), mapped to pod B: pod A gets nothing.
        url = f"http://api.invalid:{a.port}"
        plan = plan_for(
            url,
            tmp_path,
            Overrides(client=client, connect_to=(f"api.invalid:{a.port}:127.0.0.3:{b.port}",)),
        )
        assert remote_hosts(plan) == []  # judged by the address dialled: this machine
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert final.total.requests == 20 == pod_b.count
    assert pod_a.count == 0
    assert set(pod_b.hosts) == {f"api.invalid:{a.port}"}  # the Host header is the URL's


@pytest.mark.parametrize("client", HTTP1)
async def test_connect_to_keeps_the_tls_name_of_the_url(tmp_path: Path, client: str) -> None:
    ca = TestCA(tmp_path)
    issued = ca.issue("pod", ("api.test",))  # valid for the name only, not for 127.0.0.1
    seen = Seen()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    context.sni_callback = lambda sock, name, ctx: seen.sni.update([name or ""])  # type: ignore[func-returns-value]
    with Server(seen, context=context) as pod:
        plan = plan_for(
            f"https://api.test:{pod.port}",
            tmp_path,
            Overrides(client=client, connect_to=("api.test::127.0.0.1:",)),
            tls={"ca_file": str(ca.path)},
        )
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert seen.count == 20 and set(seen.sni) == {"api.test"}


@pytest.mark.parametrize("client", HTTP1)
async def test_a_unix_socket_carries_the_run(tmp_path: Path, client: str) -> None:
    seen = Seen()
    path = tmp_path / "app.sock"
    with Server(seen, path=path):
        plan = plan_for(
            "http://app.invalid", tmp_path, Overrides(client=client), unix_socket=str(path)
        )
        assert remote_hosts(plan) == []
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert final.total.requests == 20 == seen.count
    assert set(seen.hosts) == {"app.invalid"}


@pytest.mark.parametrize("client", HTTP1)
async def test_a_source_address(tmp_path: Path, client: str) -> None:
    seen = Seen()
    with Server(seen) as server:
        plan = plan_for(
            f"http://127.0.0.1:{server.port}",
            tmp_path,
            Overrides(client=client, local_address="127.0.0.2"),
        )
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert dict(seen.peers) == {"127.0.0.2": 20}


def test_the_safety_check_judges_the_address_dialled(tmp_path: Path) -> None:
    # Nothing is sent: the plan alone says where the load would go. The address that is not
    # this machine is a .invalid name: it could not be reached even if a check broke.
    plan = plan_for("http://127.0.0.1:8080", tmp_path, connect_to=["127.0.0.1:8080:pod.invalid:80"])
    assert remote_hosts(plan) == ["127.0.0.1 via pod.invalid"]
    plan = plan_for("http://127.0.0.1:8080", tmp_path, proxy="http://pod.invalid:3128")
    assert remote_hosts(plan) == ["127.0.0.1 via pod.invalid"]
    plan = plan_for("http://staging.invalid:80", tmp_path, connect_to=["::127.0.0.1:9000"])
    assert remote_hosts(plan) == []


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """pproxy, a well-kept HTTP proxy, on 127.0.0.1; its verbose log names each connection."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # pproxy 2.7 installs uvloop when it can and then asks for a loop it never set: started
    # here with uvloop hidden, on asyncio's own loop.
    start_pproxy = (
        "import sys; sys.modules['uvloop'] = None; "
        f"sys.argv = ['pproxy', '-l', 'http://127.0.0.1:{port}', '-v']; "
        "from pproxy.server import main; main()"
    )
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", start_pproxy],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    until(listening, 60, "pproxy listening")
    try:
        yield f"http://127.0.0.1:{port}", lines
    finally:
        process.terminate()
        process.wait(10)


async def test_a_proxy_carries_the_run_and_the_count_is_exact(
    tmp_path: Path, proxy: tuple[str, list[str]]
) -> None:
    url, log = proxy
    seen = Seen()
    with Server(seen) as server:
        plan = plan_for(
            f"http://127.0.0.1:{server.port}",
            tmp_path,
            load={"users": 2, "duration": "1s"},
            proxy=url,
        )
        assert plan.clients == ("aiohttp",)  # only aiohttp goes through a proxy
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert seen.count == final.total.requests + final.total.cancelled > 0
    assert any(f"127.0.0.1:{server.port}" in line for line in log), log[-5:]


async def test_https_goes_through_a_connect_tunnel(
    tmp_path: Path, proxy: tuple[str, list[str]]
) -> None:
    url, _ = proxy
    ca = TestCA(tmp_path)
    issued = ca.issue("server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    seen = Seen()
    with Server(seen, context=context) as server:
        plan = plan_for(
            f"https://127.0.0.1:{server.port}",
            tmp_path,
            proxy=url,
            tls={"ca_file": str(ca.path)},
        )
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert final.total.requests == 20 == seen.count


def test_proxy_from_the_environment_only_when_asked(tmp_path: Path) -> None:
    document = {
        "name": "env",
        "base_url": "http://127.0.0.1:9",
        "endpoints": [{"name": "ok", "path": "/ok"}],
    }
    env = {"HTTP_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "internal.test"}
    profile = parse_profile(document, "env.toml")
    assert build_plan(profile, env=env).routes.http_proxy is None  # off unless asked
    routes = build_plan(profile, Overrides(proxy_from_env=True), env=env).routes
    assert routes.http_proxy == "http://127.0.0.1:3128"
    assert routes.proxy_for("http://api.internal.test/x") is None
    assert routes.proxy_for("http://127.0.0.1:9/x") == "http://127.0.0.1:3128"


@pytest.mark.parametrize(
    ("top", "overrides", "message"),
    [
        ({"connect_to": ["a:b"]}, Overrides(), "connect_to[0]: expected HOST:PORT:ADDR:PORT"),
        ({"connect_to": ["a:99999:b:1"]}, Overrides(), "connect_to[0]: expected a port"),
        ({"proxy": "socks5://127.0.0.1:1"}, Overrides(), "proxy: expected an http://HOST:PORT"),
        ({"local_address": "eth0"}, Overrides(), "local_address: expected an IP address"),
        ({}, Overrides(proxy="ftp://x"), "--proxy: expected an http://HOST:PORT"),
        ({"proxy": "http://127.0.0.1:1"}, Overrides(client="fast"), "sent by aiohttp"),
    ],
)
def test_bad_routes_are_one_line(
    tmp_path: Path, top: dict[str, Any], overrides: Overrides, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        plan_for("http://127.0.0.1:9", tmp_path, overrides, **top)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_a_password_in_a_proxy_url_is_never_written(
    tmp_path: Path, proxy: tuple[str, list[str]]
) -> None:
    url, _ = proxy
    with_password = url.replace("http://", "http://user:hunter2@")
    seen = Seen()
    with Server(seen) as server:
        base = f"http://127.0.0.1:{server.port}"
        for overrides, top in (
            (Overrides(proxy=with_password), {}),
            (Overrides(), {"proxy": with_password}),
        ):
            plan = plan_for(base, tmp_path, overrides, **top)
            final = await run(plan)
            for suffix in (".toml", ".json"):
                path = save_session(tmp_path / f"s{suffix}", plan, final, overwrite=True)
                assert "hunter2" not in path.read_text()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            "--resolve api.test:{port}:127.0.0.3",
            {"connect_to": ["api.test:{port}:127.0.0.3:{port}"]},
        ),
        (
            "--connect-to api.test:{port}:127.0.0.3:{port}",
            {"connect_to": ["api.test:{port}:127.0.0.3:{port}"]},
        ),
        ("-x 127.0.0.1:3128", {"proxy": "http://127.0.0.1:3128"}),
        (
            "--proxy http://me:hunter2@127.0.0.1:3128",
            {"proxy": "http://me:${STRESSDECK_PROXY_PASSWORD}@127.0.0.1:3128"},
        ),
        ("--unix-socket /run/app.sock", {"unix_socket": "/run/app.sock"}),
    ],
)
def test_curl_import_keeps_where_the_command_connected(
    options: str, expected: dict[str, Any]
) -> None:
    document, warnings = profile_from_curl(
        f"curl {options.format(port=8080)} http://api.test:8080/ok"
    )
    for key, value in expected.items():
        if isinstance(value, list):
            value = [item.format(port=8080) for item in value]
        assert document[key] == value
    assert "hunter2" not in str(document) and "hunter2" not in str(warnings)


async def test_an_imported_resolve_sends_to_the_mapped_pod(tmp_path: Path) -> None:
    seen = Seen()
    with Server(seen, host="127.0.0.3") as pod:
        command = f"curl --resolve api.test:{pod.port}:127.0.0.3 http://api.test:{pod.port}/ok"
        path, _ = import_command("curl", command, out=str(tmp_path / "pod.toml"))
        plan = build_plan(load_profile(path), Overrides(requests=10), env={})
        final = await run(plan)
    assert final.total.errors == 0, final.total.error_messages
    assert final.total.requests == 10 == seen.count
    assert set(seen.hosts) == {f"api.test:{pod.port}"}
