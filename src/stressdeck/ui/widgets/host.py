"""The host pane: CPU per core, RAM, their recent history, the target process and the
load generator's own health (a saturated generator measures itself, not the target)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from stressdeck.engine.snapshot import GeneratorHealth, NodeHealth
from stressdeck.observe.monitor import HostSample
from stressdeck.ui.format import bar, ms, safe, size, sparkline

LABEL = 9  # width of the row labels ("cpu 12", "ram") so bars line up
SAMPLING = "sampling host…"


def _style(percent: float) -> str:
    return "red" if percent >= 90 else "yellow" if percent >= 70 else "green"


def host_text(
    sample: HostSample | None,
    history: Sequence[HostSample],
    health: GeneratorHealth,
    width: int,
    placeholder: str = SAMPLING,
    nodes: Sequence[NodeHealth] = (),
) -> Text:
    """The pane's content for a given width (bars and sparklines fill the line)."""
    text = Text()
    if sample is None:
        text.append_text(safe(placeholder, "dim"))
        text.append("\n")
        text.append_text(generator_text(health, nodes))
        return text
    bar_width = max(width - LABEL - 6, 4)
    cores = sample.cpu_per_core
    # Many cores on a small pane: pack two per line rather than scrolling them away.
    per_line = 2 if len(cores) > 8 and bar_width >= 30 else 1
    core_bar = bar_width // per_line - (2 if per_line > 1 else 0)
    for start in range(0, len(cores), per_line):
        for index in range(start, min(start + per_line, len(cores))):
            value = cores[index]
            text.append(f"cpu{index:<3}".ljust(LABEL - 3))
            text.append(bar(value / 100, max(core_bar - 3, 4)), _style(value))
            text.append(f"{value:4.0f}%  ")
        text.append("\n")
    text.append("ram".ljust(LABEL - 3))
    text.append(
        bar(sample.memory_percent / 100, max(bar_width - 3, 4)), _style(sample.memory_percent)
    )
    text.append(f"{sample.memory_percent:4.0f}%\n")
    text.append(
        " " * (LABEL - 3) + f"{size(sample.memory_used)} of {size(sample.memory_total)}\n", "dim"
    )
    spark_width = max(width - LABEL - 1, 4)
    text.append("cpu hist".ljust(LABEL))
    text.append(sparkline([s.cpu_total for s in history], spark_width, top=100.0), "cyan")
    text.append("\nram hist".ljust(LABEL + 1))
    text.append(sparkline([s.memory_percent for s in history], spark_width, top=100.0), "magenta")
    text.append("\n")
    target = sample.target
    if target is not None:
        text.append("target   ", "bold")
        text.append_text(safe(f"pid {target.pid} {target.name}", limit=30))
        if target.alive:
            text.append(f"  cpu {target.cpu_percent:.0f}%  rss {size(target.rss_bytes)}\n")
        else:
            text.append_text(safe(f"  ({target.note})\n", "yellow"))
    text.append_text(generator_text(health, nodes))
    return text


def generator_text(health: GeneratorHealth, nodes: Sequence[NodeHealth] = ()) -> Text:
    text = Text()
    text.append("generator", "bold")
    text.append(
        f" cpu {health.cpu_percent:.0f}%  loop lag {ms(health.loop_lag_ms)}"
        f"  send lag {ms(health.send_lag_ms)}"
    )
    if health.processes > 1:
        text.append(f"  {health.processes} {'workers' if nodes else 'processes'}")
    if health.saturated:
        text.append("  SATURATED", "bold black on yellow")
    if nodes:
        text.append_text(nodes_text(nodes))
    return text


def nodes_text(nodes: Sequence[NodeHealth]) -> Text:
    """A cluster run: where the load comes from, one line per node (CPU is the workers' own)."""
    text = Text()
    workers = sum(node.workers for node in nodes)
    text.append(f"\ncluster  {workers} workers on {len(nodes)} nodes", "bold")
    for node in nodes:
        text.append("\n  ")
        text.append_text(safe(node.node, limit=28))
        text.append(
            f"  {node.workers}w  cpu {node.cpu_percent:.0f}% (node {node.node_cpu_percent:.0f}%)"
            f"  lag {ms(node.loop_lag_ms)}  {node.requests} req"
        )
        if node.crashed:
            text.append(f"  {node.crashed} CRASHED", "bold white on red")
    return text


class HostPane(Static):
    """Pushed a host sample (with history) and the generator's health; redraws on resize."""

    _stale = False  # a sample came while hidden: draw it when shown

    def __init__(self, placeholder: str = SAMPLING, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._sample: HostSample | None = None
        self._history: Sequence[HostSample] = ()
        self._health = GeneratorHealth()
        self._cluster_nodes: tuple[NodeHealth, ...] = ()
        self._health_line = generator_text(self._health).plain
        self.placeholder = placeholder  # until the first sample; a saved session has none

    def show_host(
        self, sample: HostSample | None, history: Sequence[HostSample], draw: bool = True
    ) -> None:
        """Keep a sample; draw it now only if the pane can be seen (``draw``)."""
        self._sample, self._history = sample, tuple(history)
        self._stale = not draw
        if draw:
            self._redraw()

    def redraw_if_stale(self) -> None:
        """Draw the samples that came while the pane was hidden."""
        if self._stale:
            self._stale = False
            self._redraw()

    def show_health(self, health: GeneratorHealth, nodes: Sequence[NodeHealth] = ()) -> None:
        # The whole-run peaks change every tick without changing what the pane says: compare
        # the line it draws, not the figures, before redrawing every core's bar.
        line = generator_text(health, nodes).plain
        if line != self._health_line:
            self._health, self._cluster_nodes, self._health_line = health, tuple(nodes), line
            self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        self.update(
            host_text(
                self._sample,
                self._history,
                self._health,
                self.content_size.width or 40,
                self.placeholder,
                self._cluster_nodes,
            ),
            layout=False,  # the pane's size is the layout's, not its text's
        )
