"""The console's keys, in one table that feeds the bindings, the footer and the command
palette, so the three can never disagree.

Keys are plain characters that reach an app unchanged through tmux and screen: no
shift+arrow or function keys. ``+`` is also ``=`` (same key, unshifted) and ``/`` is also
``_`` (shift+minus), so the ×2 / ÷2 pair sits next to the ±1 pair on most layouts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    keys: str  # Textual key names, comma separated
    action: str  # an app action
    label: str  # footer label
    display: str  # how the footer shows the key
    title: str  # command palette title
    help: str  # command palette help line
    show: bool = (
        True  # in the footer; 80 columns hold about eight keys, the rest are in the palette
    )


CONTROLS: tuple[Control, ...] = (
    Control(
        "s",
        "toggle_run",
        "Start/Stop",
        "s",
        "Start or stop the run",
        "s: start a run, or stop the one going (it flushes, then stops)",
    ),
    Control(
        "p", "toggle_pause", "Pause", "p", "Pause or resume", "p: pause the load, or resume it"
    ),
    Control(
        "plus,equals_sign", "users(1)", "+User", "+", "Users +1", "+ (or =): one more virtual user"
    ),
    Control("minus", "users(-1)", "-User", "-", "Users -1", "-: one virtual user fewer"),
    Control(
        "asterisk",
        "users_scale(2.0)",
        "×2",
        "*",
        "Users ×2",
        "*: double the virtual users",
        show=False,
    ),
    Control(
        "slash,underscore",
        "users_scale(0.5)",
        "÷2",
        "/",
        "Users ÷2",
        "/ (or _): halve the virtual users",
        show=False,
    ),
    Control(
        "right_square_bracket",
        "rate(1.1)",
        "+10%",
        "]",
        "Rate +10 %",
        "]: arrival rate +10 % (open model)",
    ),
    Control(
        "left_square_bracket",
        "rate(0.9)",
        "-10%",
        "[",
        "Rate -10 %",
        "[: arrival rate -10 % (open model)",
    ),
    Control(
        "r,P",
        "preset",
        "Preset",
        "r",
        "Choose a preset",
        "r (or P): pick a load preset for the next run",
    ),
    Control(
        "m",
        "metrics",
        "Metrics",
        "m",
        "Follow target metrics",
        "m: the target's Prometheus URL and the series to follow (from the next start)",
        show=False,
    ),
    Control(
        "h",
        "toggle_histogram",
        "Hist",
        "h",
        "Toggle histogram window",
        "h: latency histogram of the whole run / of the last 10 s",
    ),
    Control(
        "ctrl+s",
        "save",
        "Save",
        "^s",
        "Save session",
        "ctrl+s: save the run under sessions/ (TOML or JSON)",
    ),
    Control(
        "q",
        "quit",
        "Quit",
        "q",
        "Quit",
        "q: quit (asks first while a run is going; the run is stopped cleanly)",
    ),
)
