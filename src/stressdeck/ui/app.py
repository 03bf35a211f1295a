"""StressDeckApp: owns the run (through a RunController), reads its newest snapshot on a
timer and pushes it down to the dashboard; keys come back up as app actions.

The runner ticks on this app's event loop; the load itself runs in one worker process (see
RunController), so the UI never blocks requests and the requests never starve the UI of
the GIL: a slow frame only means a snapshot is skipped. Snapshots are read at most
``refresh_seconds`` apart and rendered only when a new one arrived.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterable
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.notifications import SeverityLevel
from textual.screen import Screen

from stressdeck.core.errors import InputError
from stressdeck.core.files import WriteError
from stressdeck.core.signals import (
    STOP_SIGNALS,
    exit_code,
    keep_on_forced_exit,
    pending_stop,
    record_stops,
)
from stressdeck.core.text import printable
from stressdeck.core.units import format_duration
from stressdeck.engine.plan import Plan

if TYPE_CHECKING:
    from stressdeck.engine.runner import RunHandle
from stressdeck.engine.processes import STANDBYS, ProcessWorker
from stressdeck.engine.snapshot import Snapshot, cut_short, interrupted_by
from stressdeck.observe.monitor import HostMonitor
from stressdeck.ui.answering import AnsweringWatch
from stressdeck.ui.controller import MIN_RATE, ControlError, RunController, preload_run
from stressdeck.ui.driver import ConsoleDriver
from stressdeck.ui.events import INFO, WARN, EventTracker, LogEvent
from stressdeck.ui.keys import CONTROLS, PANES
from stressdeck.ui.known_hosts import FILE_NAME as KNOWN_HOSTS_FILE
from stressdeck.ui.known_hosts import KnownHosts
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource, describe_load
from stressdeck.ui.screens.dashboard import DashboardScreen
from stressdeck.ui.screens.dialogs import (
    NO_PRESET,
    ConfirmScreen,
    DurationScreen,
    MetricsScreen,
    NumberScreen,
    PresetScreen,
    SaveScreen,
)
from stressdeck.ui.screens.find_limit import FindLimitScreen
from stressdeck.ui.screens.help import HelpScreen
from stressdeck.ui.screens.picker import PickerScreen
from stressdeck.ui.search import (
    DEFAULT_SLOS,
    ConsoleSearch,
    answer_text,
    default_start,
    run_search,
    search_source,
)
from stressdeck.ui.widgets.header import RunInfo

HOST_SECONDS = 1.0
PREPARE_AFTER_S = 0.5  # from the first snapshot shown to starting the next run's workers
DEFAULT_DURATION_S = 30.0  # shown in the duration dialog for a plan without one
RUN_ACTIONS = {
    "toggle_run",
    "toggle_pause",
    "users",
    "users_scale",
    "rate",
    "preset",
    "save",
    "metrics",
    "ask_users",
    "ask_rate",
    "ask_duration",
    "find_limit",
}
# Live load changes a find-limit refuses: its steps set the load, and a change between them
# would be measured as the step's.
SEARCH_REFUSES = "find-limit sets the load: a live change would break its steps (s stops it)"
VIEW_ACTIONS = {"toggle_histogram"}  # also work on a static snapshot
NOTIFY_SECONDS = 3


def session_file_name(plan_name: str, now: float | None = None) -> str:
    from stressdeck.profiles.importers.common import slugify

    slug = slugify(plan_name, empty="session")[:40].strip("-")
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}.toml"


class StressDeckApp(App[int]):
    """The console. Pass ``source`` to open a profile, nothing for the picker, or
    ``static_snapshot`` to render one fixed Snapshot with no run (tests, screenshots)."""

    CSS_PATH = "stressdeck.tcss"
    TITLE = "stressdeck"
    BINDINGS = [
        *(Binding(c.keys, c.action, c.label, key_display=c.display, show=c.show) for c in CONTROLS),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self, source: PlanSource | None = None, options: ConsoleOptions | None = None
    ) -> None:
        o = options or ConsoleOptions()
        # Real terminals only (tests run headless): a terminal that goes away must not hang us.
        super().__init__(driver_class=ConsoleDriver if os.name == "posix" else None)
        self.options = o
        # --serve-metrics: follows each run from its start; the CLI closes it with the app.
        self.metrics_server = o.metrics_server
        self.worker_factory = o.worker_factory
        self.processes, self.i_know = max(o.processes, 1), o.i_know
        if o.worker_factory is ProcessWorker and o.static_snapshot is None and os.name == "posix":
            # While the app runs, Textual swaps sys.stderr for a capture whose fileno() is -1;
            # multiprocessing starts its resource tracker lazily with the first worker process
            # and would hand that -1 on ("bad value(s) in fds_to_keep"). Start it now instead.
            resource_tracker.ensure_running()
        self.controller = (
            RunController(source, o.worker_factory, self.processes) if source is not None else None
        )
        self.overrides = o.overrides
        self.max_duration = o.max_duration
        self.target_pid = o.target_pid
        self.monitor = o.monitor
        self.static_snapshot = o.static_snapshot
        self.static_title = o.static_title
        self.profiles_dir, self.sessions_dir = o.profiles_dir, o.sessions_dir
        # Hosts past loopback that each profile was allowed to load (asked once per profile).
        self.known_hosts = o.known_hosts or KnownHosts(o.sessions_dir / KNOWN_HOSTS_FILE)
        self.refresh_seconds = o.refresh_seconds
        self.tracker = EventTracker()
        self.answering = AnsweringWatch()
        self.dashboard: DashboardScreen | None = None
        self.autostart, self.steer, self.notes = o.autostart, o.steer, o.notes
        self.baseline, self.baseline_title, self.host_note = (
            o.baseline,
            o.baseline_title,
            o.host_note,
        )
        self.handle_signals = o.handle_signals
        self.replay_of = o.replay_of
        self.autosaved: Path | None = None
        self.autosave_error: str | None = None
        self._signalled = False  # a stop signal came: the app is stopping and autosaving
        self.renders = 0  # snapshots rendered, for tests and the refresh-rate check
        self._shown: Snapshot | None = None
        self._shown_plan: Plan | None = None
        self._runs = 0
        self.search: ConsoleSearch | None = None  # the find-limit of the current (or last) run
        self._prepared_for = -1  # the run count when worker processes were last started

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """As App.notify, but literal by default: our messages quote paths, URLs and errors
        from outside, and Textual would otherwise read ``[...]`` in them as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # -- screens ---------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        # The dashboard is the first screen when there is something to show, so it is in
        # place before the first frame (and before a test's first query).
        if self.static_snapshot is not None or self.controller is not None:
            return self._new_dashboard()
        return PickerScreen(
            self.profiles_dir,
            self.overrides,
            self.max_duration,
            self.target_pid,
            i_know=self.i_know,
        )

    def on_mount(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self._on_signal, signum)
            record_stops()  # the watchdog hears of a signal too, should this loop block
            early = pending_stop()  # came while the console was starting
            if early is not None:
                self._on_signal(early)
        for note in self.notes:
            self.notify(printable(note), severity="warning", timeout=10)
        if self.static_snapshot is not None:
            self.call_after_refresh(self._show_static)
        elif self.controller is not None:
            self._start_timers()
            if self.autostart:
                self.call_after_refresh(self.run_action, "toggle_run")

    def _show_static(self) -> None:
        assert self.static_snapshot is not None
        self._sample_host()
        self.render_snapshot(self.static_snapshot)

    def on_picker_screen_chosen(self, message: PickerScreen.Chosen) -> None:
        picked = message.picked
        self.controller = RunController(picked.source, self.worker_factory, self.processes)
        self.target_pid = picked.target_pid
        if picked.target_pid is not None and isinstance(self.monitor, HostMonitor):
            self.monitor = None  # a new target to watch: sample it from now on
        # On top of the picker (the default screen, which cannot be switched away).
        self.push_screen(self._new_dashboard())
        self._start_timers()

    def _new_dashboard(self) -> DashboardScreen:
        self.dashboard = DashboardScreen(
            self.baseline,
            self.baseline_title,
            read_only=self.controller is None,
            host_note=self.host_note,
        )
        return self.dashboard

    def _start_timers(self) -> None:
        if self.monitor is None:
            self.monitor = HostMonitor(self.target_pid)
        self.set_interval(self.refresh_seconds, self._tick)
        self.set_interval(HOST_SECONDS, self._sample_host)
        self.call_after_refresh(self._tick)
        self.call_after_refresh(self._sample_host)

    # -- data down -------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.controller is None:
            return
        snap = self.controller.latest()
        # A new snapshot, or a changed next-run plan (a load key after a run) to show.
        if snap is not self._shown or self.controller.plan is not self._shown_plan:
            self.render_snapshot(snap)
        rendered = self._shown is not None  # not before the dashboard shows a snapshot
        if rendered and not self.controller.active and self._prepared_for != self._runs:
            self._prepared_for = self._runs
            # Once what was rendered is on screen: the new processes take both cores for a
            # moment (and the imports the main thread), and the user is reading the screen
            # meanwhile, not waiting for it. Textual's "after refresh" comes before the frame
            # is written out: done then, this held the first screen back 0.5-1.5 s.
            self.set_timer(PREPARE_AFTER_S, self._prepare_workers)

    def _prepare_workers(self) -> None:
        """Start the next run's worker processes now, while the user reads the screen (the
        first tick comes after the first frame): ``s`` then starts the load at once."""
        if self.controller is not None and self.controller.active:
            return  # s came first: the run started its own
        if self.worker_factory is ProcessWorker and not self.is_headless:
            STANDBYS.prepare(self.processes)
        preload_run()

    def render_snapshot(self, snap: Snapshot) -> None:
        """Push one snapshot to every pane (also the way to show a fixed snapshot)."""
        if self.dashboard is None or not self.dashboard.is_mounted:
            self.call_after_refresh(self.render_snapshot, snap)
            return
        previous, self._shown = self._shown, snap
        controller = self.controller
        if controller is not None:
            self._shown_plan = controller.plan
            plan = controller.run_plan or controller.plan
            next_load = "" if controller.active else describe_load(controller.plan)
            # The target pane lists what the next run will follow once this one is over.
            follows = plan if controller.active else controller.plan
            searching = self.search is not None
            info = RunInfo(
                plan.name,
                # A search's run lasts until it is done: its duration is only a bound.
                None if searching else plan.load.duration,
                next_load,
                plan.insecure,
                preset=plan.load.preset,
                stages=len(plan.load.stages),
                requests=plan.load.requests,
                not_answering=self.answering.update(snap),
                replay_of=self._replaying(),
                search=self.search.status(snap.rate) if self.search is not None else None,
            )
            self.dashboard.show(snap, info, follows.metrics_url, follows.metrics)
        else:
            self.dashboard.show(snap, RunInfo(self.static_title))
        self.dashboard.log_events(self.tracker.update(snap))
        self.renders += 1
        if previous is None or previous.state != snap.state:
            self.refresh_bindings()

    def _sample_host(self) -> None:
        if self.monitor is None or self.dashboard is None:
            return
        self.dashboard.show_host(self.monitor.sample(), self.monitor.history)

    def log_event(self, text: str, level: str = INFO) -> None:
        if self.dashboard is not None and self._shown is not None:
            self.dashboard.log_events([LogEvent(self._shown.elapsed, level, text)])

    # -- which keys apply now ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        if isinstance(screen, CommandPalette) and len(self.screen_stack) > 1:
            # A command picked in the palette runs as the palette closes, maybe before it is
            # off the stack: it acts on the screen the palette was opened over.
            screen = self.screen_stack[-2]
        return self.action_state(action, screen)

    def action_state(self, action: str, screen: Screen) -> bool | None:
        """Whether ``action`` applies with ``screen`` on top: True, False (hidden), or None
        (shown greyed out). The command palette asks about the screen it was opened on,
        since while it is open the palette itself is the top screen."""
        if action not in RUN_ACTIONS and action not in VIEW_ACTIONS:
            return True
        if not isinstance(screen, DashboardScreen):  # the picker, or a dialog on top
            return False
        if action in VIEW_ACTIONS:
            return True
        controller = self.controller
        if controller is None:
            return False
        if action == "ask_users":
            return not controller.open_model
        if action in ("rate", "ask_rate"):
            return controller.open_model
        if action == "toggle_pause":
            return True if controller.active else None
        if action == "save":
            return True if controller.handle is not None else None
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own (theme, keys, screenshot...), minus its Quit: ours asks first.
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command
        for control in CONTROLS:
            name = control.action.split("(")[0]
            if self.action_state(name, screen) is False:
                continue
            yield SystemCommand(
                f"{control.title}  ({control.display})",
                control.help,
                lambda action=control.action: self.run_action(action),
            )
        if isinstance(screen, DashboardScreen):
            for digit, (pane, title) in enumerate(PANES, start=1):
                yield SystemCommand(
                    f"Show {title}  ({digit})",
                    f"{digit}: the {title} tab",
                    lambda pane=pane, screen=screen: screen.action_show_pane(pane),
                )

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- run control -----------------------------------------------------------------------

    async def action_toggle_run(self) -> None:
        controller = self.controller
        if controller is None:
            return
        if controller.active:
            self._stop_run()
            return
        hosts = self.known_hosts.to_confirm(controller.plan)
        if hosts:
            self._confirm_hosts(hosts)
            return
        await self._start_run()

    @work(exclusive=True, group="dialog")
    async def _confirm_hosts(self, hosts: list[str]) -> None:
        controller = self.controller
        if controller is None:
            return
        plan = controller.plan
        if not await self._hosts_confirmed(hosts):
            return
        if controller.plan is not plan or controller.active:
            return  # the plan changed (or a run began) while the question was up: ask afresh
        self._remember_hosts(plan, hosts)
        await self._start_run()

    async def _hosts_confirmed(self, hosts: list[str]) -> bool:
        names = ", ".join(hosts)
        question = (
            f"Send load to {printable(names, 120)}? Not this machine, and this profile has not "
            "run against it before. Yes starts the run and remembers the answer for this profile."
        )
        if not await self.push_screen_wait(ConfirmScreen(question, "Start", "Cancel")):
            self.log_event(f"run not started: {printable(names, 120)} not confirmed")
            return False
        return True

    def _remember_hosts(self, plan: Plan, hosts: list[str]) -> None:
        try:
            self.known_hosts.remember(plan, hosts)
        except WriteError as exc:  # the run may still go; it will only be asked about again
            self.notify(
                printable(exc), title="not remembered", severity="warning", timeout=NOTIFY_SECONDS
            )

    async def _start_run(
        self, plan: Plan | None = None, search: ConsoleSearch | None = None
    ) -> None:
        """Start ``plan`` (default: the plan the keys shaped); with ``search``, a find-limit
        steps its load."""
        controller = self.controller
        if controller is None or controller.active:
            return
        self.tracker.reset()
        self._runs += 1
        plan = plan or controller.plan
        load = search.describe() if search is not None else describe_load(plan)
        self.log_event(
            f"run {self._runs}: {printable(plan.name)} → {printable(plan.target)}, {printable(load)}"
        )
        if plan.insecure:
            self.log_event(
                "TLS verification off (insecure = true): certificates are not checked", WARN
            )
        try:
            await controller.start(plan)
        except (ControlError, InputError, OSError, RuntimeError) as exc:
            self.notify(
                printable(exc), title="cannot start", severity="error", timeout=NOTIFY_SECONDS
            )
            return
        self.search = search
        if self.dashboard is not None:
            self.dashboard.show_search(search)
        if search is not None and controller.handle is not None:
            self.run_worker(
                self._find_limit(controller.handle, search, plan.target), group="search"
            )
        if self.handle_signals:
            keep_on_forced_exit(self._forced_autosave)
        if self.metrics_server is not None and controller.handle is not None:
            self.metrics_server.attach(controller.handle)
        if self.steer is not None and controller.handle is not None:
            # A replay steers its first run only; later runs are the user's own.
            steer, self.steer = self.steer, None
            self.run_worker(steer(controller.handle), group="steer")
        self._tick()

    @work(exclusive=True, group="run")
    async def _stop_run(self) -> None:
        if self.controller is not None:
            await self.controller.stop()
        self._tick()

    def action_toggle_pause(self) -> None:
        self._control(lambda c: c.toggle_pause())

    def action_users(self, delta: int) -> None:
        """+ / -: a user more or fewer; in the open model, a step of the rate ladder."""
        if self.controller is not None and self.controller.open_model:
            self._control(lambda c: c.step_rate(up=delta > 0), "/s rate")
        else:
            self._control(lambda c: c.change_users(delta=delta), "users")

    def action_users_scale(self, factor: float) -> None:
        if self.controller is not None and self.controller.open_model:
            self._control(lambda c: c.change_rate(factor), "/s rate")
        else:
            self._control(lambda c: c.change_users(factor=factor), "users")

    @work(exclusive=True, group="dialog")
    async def action_ask_users(self) -> None:
        controller = self.controller
        if controller is None or self._searching():
            return
        current = controller.handle.users if controller.active and controller.handle else None
        now = current if current is not None else controller.plan.load.users
        value = await self.push_screen_wait(
            NumberScreen("Virtual users", "users", float(now), whole=True, minimum=0)
        )
        if value is not None:
            self._control(lambda c: c.set_users(int(value)), "users")

    @work(exclusive=True, group="dialog")
    async def action_ask_rate(self) -> None:
        controller = self.controller
        if controller is None or self._searching():
            return
        live = controller.handle.rate if controller.active and controller.handle else None
        now = live if live is not None else (controller.plan.load.rate or 0.0)
        value = await self.push_screen_wait(
            NumberScreen("Arrival rate", "requests/s", now, whole=False, minimum=MIN_RATE)
        )
        if value is not None:
            self._control(lambda c: c.set_rate(value), "/s rate")

    @work(exclusive=True, group="dialog")
    async def action_ask_duration(self) -> None:
        controller = self.controller
        if controller is None:
            return
        now = controller.plan.load.duration or DEFAULT_DURATION_S
        value = await self.push_screen_wait(DurationScreen(now))
        if value is None:
            return
        try:
            controller.set_duration(value)
        except InputError as exc:
            self.notify(printable(exc.line()), severity="error", timeout=NOTIFY_SECONDS)
            return
        when = "from the next start (s)" if controller.active else "when you press s"
        self.notify(
            f"{describe_load(controller.plan)}: applies {when}",
            title="duration",
            timeout=NOTIFY_SECONDS,
        )
        self.log_event(f"duration of the next run: {format_duration(value)}")
        self._tick()

    def action_rate(self, factor: float) -> None:
        self._control(lambda c: c.change_rate(factor), "/s rate")

    def _searching(self) -> bool:
        """A find-limit steps the load now: say that live changes are refused."""
        if self.search is None or not self.search.running:
            return False
        self.notify(SEARCH_REFUSES, severity="warning", timeout=NOTIFY_SECONDS)
        return True

    def _control(self, change: Any, unit: str = "") -> None:
        controller = self.controller
        if controller is None or self._searching():
            return
        try:
            value = change(controller)
        except ControlError as exc:
            self.notify(str(exc), severity="warning", timeout=NOTIFY_SECONDS)
            return
        except InputError as exc:
            self.notify(printable(exc.line()), severity="error", timeout=NOTIFY_SECONDS)
            return
        if unit and not controller.active:
            self.notify(f"next run: {value:g} {unit}".replace(" /s", "/s"), timeout=NOTIFY_SECONDS)
        self._tick()

    # -- find-limit --------------------------------------------------------------------------

    @work(exclusive=True, group="dialog")
    async def action_find_limit(self) -> None:
        """L: ask for SLOs and steps, then start a run of the plan whose load a find-limit
        steps (as ``stressdeck find-limit`` does), shown live on the Charts tab."""
        controller = self.controller
        if controller is None:
            return
        if controller.active:
            self.notify(
                "a run is going: stop it with s, then L finds the limit",
                severity="warning",
                timeout=NOTIFY_SECONDS,
            )
            return
        plan = controller.plan
        slos = tuple(t.expr for t in plan.thresholds) or DEFAULT_SLOS
        model = plan.load.model
        dialog = FindLimitScreen(slos, model, default_start(model), i_know=self.i_know)
        search = await self.push_screen_wait(dialog)
        if search is None:
            return
        try:
            run_plan = search_source(controller.source, search).build()
        except InputError as exc:
            self.notify(printable(exc.line()), severity="error", timeout=NOTIFY_SECONDS)
            return
        hosts = self.known_hosts.to_confirm(run_plan)
        if hosts:
            if not await self._hosts_confirmed(hosts):
                return
            self._remember_hosts(run_plan, hosts)
        await self._start_run(run_plan, ConsoleSearch(search))

    async def _find_limit(self, handle: RunHandle, state: ConsoleSearch, target: str) -> None:
        """The search steps the run's load (ui/search.py); its answer is then shown."""
        await run_search(
            handle, state, target, changed=lambda: self._show_search(state), log=self.log_event
        )
        if state.result is not None:
            self.notify(printable(answer_text(state.result), 300), title="find-limit", timeout=10)
        elif state.dead and state.ended:
            message = printable(state.ended, 300)
            self.notify(message, title="find-limit", severity="error", timeout=10)
        self._tick()

    def _show_search(self, state: ConsoleSearch) -> None:
        if self.search is state and self.dashboard is not None:
            self.dashboard.show_search(state)
            if self._shown is not None:
                self.render_snapshot(self._shown)

    def action_toggle_histogram(self) -> None:
        if self.dashboard is not None:
            self.dashboard.toggle_histogram(self._shown)

    @work(exclusive=True, group="dialog")
    async def action_preset(self) -> None:
        controller = self.controller
        if controller is None:
            return
        base = describe_load(controller.source.with_overrides(preset=None).build())
        name = await self.push_screen_wait(PresetScreen(controller.plan.load.preset, base))
        if name is None:
            return
        try:
            controller.choose_preset(None if name == NO_PRESET else name)
        except InputError as exc:
            self.notify(printable(exc.line()), severity="error", timeout=NOTIFY_SECONDS)
            return
        when = "from the next start (s)" if controller.active else "when you press s"
        self.notify(
            f"{describe_load(controller.plan)}: applies {when}",
            title="preset",
            timeout=NOTIFY_SECONDS,
        )
        self._tick()

    @work(exclusive=True, group="dialog")
    async def action_metrics(self) -> None:
        controller = self.controller
        if controller is None:
            return
        plan = controller.plan

        def check(url: str | None, series: tuple[str, ...]) -> None:
            controller.source.with_overrides(
                metrics_url=url, metrics=series or None
            )  # build_plan's checks

        answer = await self.push_screen_wait(
            # What the next run follows now, from the profile or an earlier change.
            MetricsScreen(plan.metrics_url or "", tuple(plan.metrics), check)
        )
        if answer is None:
            return
        try:
            controller.set_metrics(*answer)
        except InputError as exc:
            self.notify(printable(exc.line()), severity="error", timeout=NOTIFY_SECONDS)
            return
        url = controller.plan.metrics_url
        what = (
            f"{printable(url)}, {len(controller.plan.metrics)} series"
            if url
            else "no target metrics"
        )
        when = "from the next start (s)" if controller.active else "when you press s"
        self.notify(f"{what}: applies {when}", title="metrics", timeout=NOTIFY_SECONDS)
        self.log_event(f"target metrics for the next run: {what}")
        self._tick()

    @work(exclusive=True, group="dialog")
    async def action_save(self) -> None:
        controller = self.controller
        if controller is None or controller.handle is None or controller.run_plan is None:
            self.notify(
                "nothing to save yet: start a run with s",
                severity="warning",
                timeout=NOTIFY_SECONDS,
            )
            return
        default = session_file_name(controller.run_plan.name)
        path = await self.push_screen_wait(SaveScreen(default, self.sessions_dir))
        if path is None:
            return
        overwrite = False
        if path.exists():
            question = f"{printable(path)} already exists. Overwrite it?"
            if not await self.push_screen_wait(ConfirmScreen(question, "Overwrite", "Cancel")):
                return
            overwrite = True
        await self.save_session(path, overwrite=overwrite)

    async def save_session(self, path: Path, *, overwrite: bool = False) -> Path | None:
        """Write the current (or last) run to ``path``; notifies and returns None on failure."""
        from stressdeck.sessions.session import save_session

        controller = self.controller
        if controller is None or controller.handle is None or controller.run_plan is None:
            return None
        snap = controller.handle.latest
        try:
            # Off the event loop: a long run's timeline and histograms take a moment to encode.
            written = await asyncio.to_thread(
                save_session,
                path,
                controller.run_plan,
                snap,
                overwrite=overwrite,
                replay_of=self._replaying(),
                limit=self.search.result if self.search is not None else None,
            )
        except WriteError as exc:
            self.notify(printable(exc), title="not saved", severity="error", timeout=NOTIFY_SECONDS)
            return None
        note = " (run still going: saved so far)" if controller.active else ""
        self.notify(f"saved {printable(written)}{note}", timeout=NOTIFY_SECONDS)
        self.log_event(f"session saved to {printable(written)}{note}")
        return written

    def _replaying(self) -> str | None:
        """The replayed session while the first run (the replay itself) is the one saved."""
        return self.replay_of if self._runs <= 1 else None

    def action_help_quit(self) -> None:
        """ctrl+c: Textual's own note says "Press [b]q[/b]" with its markup shown raw under
        our literal notify; say it in plain words, and that a run is stopped cleanly."""
        self.notify(
            "ctrl+c does not quit here: press q (asks first while a run is going) or ctrl+q",
            title="Do you want to quit?",
        )

    # -- quitting --------------------------------------------------------------------------

    async def action_quit(self) -> None:
        controller = self.controller
        if controller is not None and controller.active:
            self._confirm_quit()
            return
        self.exit(0)

    @work(exclusive=True, group="dialog")
    async def _confirm_quit(self) -> None:
        question = "A run is going. Stop it and quit? (ctrl+s first saves what it measured)"
        if not await self.push_screen_wait(
            ConfirmScreen(question, "Stop and quit", "Keep running")
        ):
            return
        if self.controller is not None:
            await self.controller.stop()  # the engine flushes and cancels in-flight requests
        self.exit(0)

    def on_console_driver_hung_up(self, message: ConsoleDriver.HungUp) -> None:
        """The terminal went away (SSH dropped, tmux killed) and no SIGHUP said so (or not
        yet): the same as one, sent for real so the watchdog hears of it too; otherwise the
        run would go on for nobody until its end."""
        if self.handle_signals and not self._signalled:
            os.kill(os.getpid(), signal.SIGHUP)

    def _on_signal(self, signum: int) -> None:
        # The first signal stops and autosaves; a second one is the watchdog's (it ends the
        # process at once, keeping what was measured): restarting the stop here would
        # cancel the autosave under way.
        if self._signalled:
            return
        self._signalled = True
        if signum == signal.SIGHUP and isinstance(self._driver, ConsoleDriver):
            self._driver.hanging_up()
        self.run_worker(self._interrupted(signum), group="signal")

    def _forced_autosave(self) -> str | None:
        """For the watchdog, when the clean stop did not end the process in time: the run's
        latest figures as an autosave (on the watchdog's thread; the run's start imported
        these modules already, see ``preload_run``)."""
        from stressdeck.sessions.autosave import autosave_path, sent_anything
        from stressdeck.sessions.session import save_session

        controller = self.controller
        if controller is None or controller.run_plan is None or not controller.active:
            return None
        if self.autosaved is not None or not sent_anything(controller.latest()):
            return None
        written = save_session(
            autosave_path(str(self.sessions_dir)),
            controller.run_plan,
            cut_short(controller.latest(), pending_stop()),
            replay_of=self._replaying(),
        )
        return f"partial session saved: {printable(written)}"

    async def _interrupted(self, signum: int) -> None:
        """Stop the run (the engine flushes), keep what it measured, exit non-zero. The path
        is printed by the caller once the terminal is back (see ui.main). SIGHUP (the SSH
        connection dropped) exits 129, SIGINT and SIGTERM 130."""
        if self.controller is not None:
            try:
                self.autosaved = await self.controller.stop_and_autosave(
                    interrupted_by(signum), self.sessions_dir, self._replaying()
                )
            except WriteError as exc:
                self.autosave_error = str(exc)
            else:
                keep_on_forced_exit(None)  # kept: nothing more for the watchdog to write
        self.exit(exit_code(signum), return_code=exit_code(signum))

    async def on_unmount(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            record_stops()  # not the defaults asyncio leaves: SIGTERM would kill mid-exit
        # Whatever ended the app (an error included), let the engine stop and flush.
        if self.controller is not None and self.controller.active:
            await self.controller.stop()
