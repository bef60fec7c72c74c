"""What the pairings print: load averages as `uptime` shows them, and Markdown tables."""

from __future__ import annotations

import os


def load_averages() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def rate(value: float) -> str:
    return f"{value:,.0f}"


def share(value: float) -> str:
    """CPU time per second of wall time, as % of one core."""
    return f"{value:.0%}"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}"
