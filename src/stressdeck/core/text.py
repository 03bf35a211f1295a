"""Making outside text safe to show: no terminal escape codes, no Rich markup."""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC, BEL, CSI ...) except tab; newlines are folded too,
# so a hostile value can neither move the cursor nor break a one-line message.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: object, limit: int | None = None) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), optionally cut."""
    value = str(text)
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), value)
