"""What a report section is made of: headings, tables, figures, notes and folded parts.

Sections build these plain objects from the metric files; the page template
(templates/page.html.j2) turns them into HTML, escaping every string that is
not already :class:`markupsafe.Markup` (inline SVG is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup


@dataclass
class Cell:
    """A table cell; `css` marks it (e.g. "over" for a value above a threshold)."""

    text: str
    css: str = ""
    title: str = ""
    sub: str = ""  # a second, smaller line (e.g. the confidence interval)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell | str]]
    caption: str = ""
    css: str = ""
    kind: str = "table"

    def __post_init__(self):
        self.rows = [[c if isinstance(c, Cell) else Cell(str(c)) for c in row] for row in self.rows]


@dataclass
class Figure:
    """An inline SVG (`svg`) or a raster as a data URI (`src`), with a caption that says what it shows."""

    figure_id: str
    caption: str
    svg: Markup | None = None
    src: str | None = None
    alt: str = ""
    wide: bool = False
    kind: str = "figure"


@dataclass
class Note:
    """A paragraph. `tone`: "text", "caption", "unavailable" (a part that could not be shown and why)
    or "alert" (something a reader must not miss, e.g. a leak)."""

    text: str | Markup
    tone: str = "text"
    kind: str = "note"


@dataclass
class Items:
    """A list of short lines (each a string or Markup)."""

    items: list[str | Markup]
    tone: str = "text"
    kind: str = "items"


@dataclass
class Facts:
    """Label/value pairs, shown as a definition list."""

    pairs: list[tuple[str, str | Markup]]
    kind: str = "facts"


@dataclass
class Headline:
    """Big numbers for the first screen: (label, value, interval, detail)."""

    cards: list[tuple[str, str, str, str]]
    kind: str = "headline"


@dataclass
class Heading:
    """A subsection title with its anchor (listed in the table of contents)."""

    text: str
    anchor: str
    kind: str = "heading"


@dataclass
class Details:
    """A folded part: `summary` is always visible, the blocks after a click."""

    summary: str
    blocks: list = field(default_factory=list)
    kind: str = "details"


@dataclass
class Grid:
    """Blocks side by side, wrapping on narrow pages."""

    blocks: list = field(default_factory=list)
    kind: str = "grid"


@dataclass
class Preformatted:
    text: str
    kind: str = "pre"


@dataclass
class Flow:
    """An inclusion diagram: a start box, side boxes of exclusions, an end box and its breakdowns."""

    start: tuple[str, str]
    exclusions: list[tuple[str, str]]
    excluded_total: str
    end: tuple[str, str]
    breakdowns: list[tuple[str, list[tuple[str, str]]]]
    kind: str = "flow"


@dataclass
class Volatile:
    """Blocks that differ between runs by nature (run date, timings), fenced by HTML comments
    so that reports can be compared byte for byte outside them."""

    blocks: list = field(default_factory=list)
    kind: str = "volatile"


@dataclass
class Section:
    """One numbered part of the page."""

    anchor: str
    title: str
    blocks: list = field(default_factory=list)

    def headings(self) -> list[Heading]:
        return [b for b in self.blocks if isinstance(b, Heading)]


def unavailable(what: str, because: str) -> Note:
    """The standard sentence for a part whose inputs are absent."""
    return Note(f"{what}: not available because {because}.", tone="unavailable")


def number(value, digits: int = 3) -> str:
    """A number as text: integers as they are, floats to `digits` significant digits, None as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u2009")
    if isinstance(value, float) and value.is_integer() and abs(value) >= 10 ** (digits - 1):
        return f"{int(value):,}".replace(",", "\u2009")
    return f"{value:.{digits}g}"


def fixed(value, decimals: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    return f"{value:.{decimals}f}"


def percent(value, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    return f"{100 * value:.{decimals}f}%"


def estimate(metric: dict | None, decimals: int = 2) -> str:
    """{value, ci_low, ci_high} as "0.62 (0.38\u20130.84)"; the interval is left out when absent."""
    if not metric or metric.get("value") is None:
        return "\u2013"
    text = fixed(metric["value"], decimals)
    low, high = metric.get("ci_low"), metric.get("ci_high")
    if low is not None and high is not None:
        text += f" ({fixed(low, decimals)}\u2013{fixed(high, decimals)})"
    return text


def estimate_cell(metric: dict | None, decimals: int = 2) -> Cell:
    """{value, ci_low, ci_high} as a cell: the value, and the interval on a second line."""
    if not metric or metric.get("value") is None:
        return Cell("\u2013")
    low, high = metric.get("ci_low"), metric.get("ci_high")
    sub = f"{fixed(low, decimals)}\u2013{fixed(high, decimals)}" if low is not None and high is not None else ""
    return Cell(fixed(metric["value"], decimals), sub=sub)


def level_text(ci_level: float | None) -> str:
    """0.95 -> "95%"; None -> "the configured"."""
    if ci_level is None:
        return "the configured"
    return f"{100 * ci_level:g}%"
