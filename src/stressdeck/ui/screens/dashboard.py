"""The dashboard: a status header, six panes and the footer.

Below 140 columns the panes are tabs (Overview, Endpoints, Charts, Host, Log, Target; keys 1-6 or
left/right on the tab bar); from 140 columns the tab bar goes and every pane shows at once
in a grid (see stressdeck.tcss). Panes are laid out once; only CSS classes change on a
resize, so nothing is rebuilt and hidden charts cost nothing.

The screen only renders what it is pushed (``show``, ``show_host``); the keys it binds are
app actions, because the app owns the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs

from stressdeck.core.text import printable
from stressdeck.engine.snapshot import Snapshot
from stressdeck.observe.monitor import HostSample
from stressdeck.ui.events import LogEvent
from stressdeck.ui.keys import PANES
from stressdeck.ui.search import ConsoleSearch
from stressdeck.ui.widgets.charts import ChartLegend, LatencyHistogram, TimelineChart
from stressdeck.ui.widgets.checks import ChecksPane
from stressdeck.ui.widgets.eventlog import EventLog
from stressdeck.ui.widgets.header import RunInfo, StatusHeader
from stressdeck.ui.widgets.host import SAMPLING, HostPane
from stressdeck.ui.widgets.limit_chart import LimitChart, LimitLegend, LimitStatus, picture
from stressdeck.ui.widgets.overview import OverviewStats, TopErrors
from stressdeck.ui.widgets.tables import CodesPane, EndpointTable, StreamsPane
from stressdeck.ui.widgets.target import TargetPane

WIDE = 140  # columns from which every pane is shown side by side


@dataclass(frozen=True)
class _Views:
    header: StatusHeader
    histogram: LatencyHistogram
    overview: OverviewStats
    errors: TopErrors
    endpoints: EndpointTable
    streams: StreamsPane
    checks: ChecksPane
    codes: CodesPane
    charts: tuple[TimelineChart, ...]
    legends: tuple[ChartLegend, ...]
    limit_chart: LimitChart
    charts_pane: Container
    limit_status: LimitStatus
    host: HostPane
    log: EventLog
    target: TargetPane


@dataclass(frozen=True)
class _Shown:
    """The last data pushed, kept so a pane coming into view is drawn at once."""

    snap: Snapshot
    info: RunInfo
    metrics_url: str | None
    metrics: tuple[str, ...]


class DashboardScreen(Screen[None]):
    """``baseline`` (a saved run's final snapshot) adds its figures under the live ones;
    ``read_only`` is a saved session on view: no run, no run keys."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    BINDINGS = [
        *(
            Binding(str(i), f"show_pane('{pane}')", title, show=False)
            for i, (pane, title) in enumerate(PANES, start=1)
        ),
    ]

    def __init__(
        self,
        baseline: Snapshot | None = None,
        baseline_title: str = "",
        read_only: bool = False,
        host_note: str = "",
    ) -> None:
        super().__init__()
        self.baseline, self.baseline_title = baseline, baseline_title
        self.read_only, self.host_note = read_only, host_note
        self._views: _Views | None = None  # set once the panes exist, cleared when they go
        self._shown: _Shown | None = None
        self.active_pane = "overview"
        self.search: ConsoleSearch | None = None  # a find-limit's steps, on the Charts tab

    def on_mount(self) -> None:
        # Looked up once, not on every refresh; until mounted (and after unmount) a refresh
        # or a host sample that arrives has nothing to draw on and is dropped.
        self._views = _Views(
            header=self.query_one(StatusHeader),
            histogram=self.query_one(LatencyHistogram),
            overview=self.query_one(OverviewStats),
            errors=self.query_one(TopErrors),
            endpoints=self.query_one(EndpointTable),
            streams=self.query_one(StreamsPane),
            checks=self.query_one(ChecksPane),
            codes=self.query_one(CodesPane),
            charts=tuple(self.query(TimelineChart)),
            legends=tuple(self.query(ChartLegend)),
            limit_chart=self.query_one(LimitChart),
            charts_pane=self.query_one("#pane-charts", Container),
            limit_status=self.query_one(LimitStatus),
            host=self.query_one(HostPane),
            log=self.query_one(EventLog),
            target=self.query_one(TargetPane),
        )

    def on_unmount(self) -> None:
        self._views = None

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        yield Tabs(
            *(Tab(f"{i} {title}", id=pane) for i, (pane, title) in enumerate(PANES, start=1)),
            id="tabs",
        )
        with Container(id="panes"):
            with self._pane("overview", "latency, status codes and errors"):
                with Horizontal(id="overview-top"):
                    yield LatencyHistogram(id="histogram")
                    yield OverviewStats(id="overview-stats")
                yield TopErrors(id="top-errors")
            with self._pane("charts", "over time"):
                # Shown once a find-limit began (the pane gets -search): its steps by load.
                with Vertical(classes="chart-box", id="limit-box"):
                    yield LimitLegend(id="limit-legend")
                    yield LimitStatus(id="limit-status")
                    yield LimitChart(id="limit-chart")
                with Vertical(classes="chart-box", id="load-box"):
                    yield ChartLegend("load", id="load-legend")
                    yield TimelineChart("load", id="load-chart")
                with Vertical(classes="chart-box", id="latency-box"):
                    yield ChartLegend("latency", id="latency-legend")
                    yield TimelineChart("latency", id="latency-chart")
            title = "endpoints, status codes and errors"
            if self.baseline is not None:
                title += f" (↳ baseline: {printable(self.baseline_title, 40)})"
            with self._pane("endpoints", title):
                yield EndpointTable(self.baseline, id="endpoint-table")
                yield StreamsPane(id="streams")
                yield ChecksPane(id="checks")
                yield CodesPane(id="codes")
            with self._pane("host", "host"):
                yield HostPane(self.host_note or SAMPLING, id="host-pane")
            with self._pane("log", "recent events"):
                yield EventLog(id="event-log")
            with self._pane("target", "target metrics"):
                yield TargetPane(id="target-pane")
        yield Footer(compact=True)

    @staticmethod
    def _pane(name: str, title: str) -> Container:
        pane = Container(
            id=f"pane-{name}", classes="pane -active" if name == "overview" else "pane"
        )
        pane.border_title = title  # shown only in the wide grid, where panes have borders
        return pane

    # -- data down -------------------------------------------------------------------------

    def show(
        self,
        snap: Snapshot,
        info: RunInfo,
        metrics_url: str | None = None,
        metrics: Sequence[str] = (),
    ) -> None:
        """Push a snapshot: the header always, the panes only where they can be seen (the
        tab shown; every pane on a wide screen). A pane coming into view is drawn then."""
        self._shown = _Shown(snap, info, metrics_url, tuple(metrics))
        views = self._views
        if views is None:
            return
        views.header.show(snap, info, views.histogram.recent)
        for pane in self.visible_panes():
            self._draw(pane)

    def visible_panes(self) -> tuple[str, ...]:
        if self.has_class("-wide"):
            return tuple(pane for pane, _ in PANES)
        return (self.active_pane,)

    def _draw(self, pane: str) -> None:
        views, shown = self._views, self._shown
        if views is None or shown is None:
            return
        snap = shown.snap
        if pane == "overview":
            views.histogram.show(snap)
            views.overview.show(snap, views.histogram.recent)
            views.errors.show(snap)
        elif pane == "endpoints":
            views.endpoints.show(snap, views.histogram.recent)
            views.streams.show(snap)
            views.checks.show(snap)
            views.codes.show(snap)
        elif pane == "charts":
            for chart in views.charts:
                chart.show(snap)
            for legend in views.legends:
                legend.show(snap)
            if self.search is not None:
                views.limit_status.show(self.search)
                views.limit_chart.show(picture(self.search))
        elif pane == "host":
            views.host.show_health(snap.health, snap.nodes)
            views.host.redraw_if_stale()
        elif pane == "target":
            views.target.show(snap, shown.metrics_url, shown.metrics, editable=not self.read_only)

    def show_search(self, search: ConsoleSearch | None) -> None:
        """A find-limit's steps on the Charts tab (None: no search, the tab as before)."""
        self.search = search
        if self._views is None:
            return
        self._views.charts_pane.set_class(search is not None, "-search")
        if "charts" in self.visible_panes():
            self._draw("charts")

    def show_host(self, sample: HostSample | None, history: Sequence[HostSample]) -> None:
        if self._views is not None:
            self._views.host.show_host(sample, history, draw="host" in self.visible_panes())

    def log_events(self, events: Sequence[LogEvent]) -> None:
        if events and self._views is not None:
            self._views.log.add(events)

    def toggle_histogram(self, snap: Snapshot | None) -> None:
        """Switch the histogram, and with it the header's p95 and errors and the Endpoints
        table, between the whole run and the last 10 s."""
        if self._views is None:
            return
        histogram = self._views.histogram
        histogram.recent = not histogram.recent
        if snap is not None:
            histogram.show(snap)
            self._views.overview.show(snap, histogram.recent)
        if self._shown is not None:
            self._views.header.show(self._shown.snap, self._shown.info, histogram.recent)
            if "endpoints" in self.visible_panes():
                self._draw("endpoints")

    # -- panes -----------------------------------------------------------------------------

    def action_show_pane(self, pane: str) -> None:
        self.query_one(Tabs).active = pane

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        active = (event.tab.id if event.tab is not None else None) or "overview"
        self.active_pane = active
        for pane, _ in PANES:
            self.query_one(f"#pane-{pane}").set_class(pane == active, "-active")
        self._draw(active)

    def on_resize(self) -> None:
        # Crossing into the wide grid shows every pane: bring the hidden ones up to date.
        for pane in self.visible_panes():
            self._draw(pane)
