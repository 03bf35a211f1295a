"""The console's keys, in one table that feeds the bindings, the footer and the command
palette, so the three can never disagree.

Keys are plain characters that reach an app unchanged through tmux and screen: no
shift+arrow or function keys. ``+`` is also ``=`` (same key, unshifted) and ``/`` is also
``_`` (shift+minus), so the ×2 / ÷2 pair sits next to the ±1 pair on most layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

# The dashboard's tabs, in the order of their digit keys 1-6.
PANES: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("endpoints", "Endpoints"),
    ("charts", "Charts"),
    ("host", "Host"),
    ("log", "Log"),
    ("target", "Target"),
)
PANE_TITLES = tuple(title for _, title in PANES)


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
        "s: start a run, or stop the one going",
    ),
    Control(
        "p", "toggle_pause", "Pause", "p", "Pause or resume", "p: pause the load, or resume it"
    ),
    Control(
        "plus,equals_sign",
        "users(1)",
        "+Load",
        "+",
        "More load (users +1, or the next rate step)",
        "+ (or =): a user more; open model: the next rate step (200, 300, 500…)",
    ),
    Control(
        "minus",
        "users(-1)",
        "-Load",
        "-",
        "Less load (users -1, or the rate step below)",
        "-: a user fewer; open model: the rate step below",
    ),
    Control(
        "asterisk",
        "users_scale(2.0)",
        "×2",
        "*",
        "Double the load (users or rate ×2)",
        "*: double the virtual users (open model: the rate)",
        show=False,
    ),
    Control(
        "slash,underscore",
        "users_scale(0.5)",
        "÷2",
        "/",
        "Halve the load (users or rate ÷2)",
        "/ (or _): halve the virtual users (open model: the rate)",
        show=False,
    ),
    Control(
        "u",
        "ask_users",
        "Users…",
        "u",
        "Set users to an exact number",
        "u: type an exact number of virtual users (closed model)",
        show=False,
    ),
    Control(
        "R",
        "ask_rate",
        "Rate…",
        "R",
        "Set the rate to an exact value",
        "R: type an exact arrival rate in requests/s (open model)",
        show=False,
    ),
    Control(
        "d",
        "ask_duration",
        "Duration…",
        "d",
        "Set the run's duration",
        "d: type how long the next run lasts (30s, 2m, 1h, 1:30)",
        show=False,
    ),
    Control(
        "right_square_bracket",
        "rate(1.1)",
        "+10%",
        "]",
        "Rate +10 %",
        "]: arrival rate +10 % (open model)",
        show=False,
    ),
    Control(
        "left_square_bracket",
        "rate(0.9)",
        "-10%",
        "[",
        "Rate -10 %",
        "[: arrival rate -10 % (open model)",
        show=False,
    ),
    Control(
        "L",
        "find_limit",
        "Limit…",
        "L",
        "Find the limit",
        "L: step the load until an SLO breaks: the highest load the target takes (find-limit)",
        show=False,
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
        "m: the target's Prometheus URL and series to follow (next run)",
        show=False,
    ),
    Control(
        "h",
        "toggle_histogram",
        "Hist",
        "h",
        "Toggle window: whole run / last 10 s",
        "h: the whole run / the last 10 s: histogram, header p95 and err, Endpoints table",
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
        "question_mark",
        "help",
        "Keys",
        "?",
        "Help: every key",
        "?: this list of every key",
    ),
    Control(
        "q",
        "quit",
        "Quit",
        "q",
        "Quit",
        "q: quit (asks first while a run is going)",
    ),
)
