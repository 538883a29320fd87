"""Protocol flowcharts generated from the protocol object itself (seed figures "workflow for a
ketamine maintenance trial" and "ketamine + psychotherapy logic").

Phases shared by every arm are drawn once; the arms then branch. Arrows carry the entry criterion
of the phase they lead to (e.g. "stable remitters"); patients who do not meet it leave treatment
and are followed up. Because the chart is drawn from the validated protocol, it cannot disagree
with what the simulation runs.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ketadur.protocols.describe import entry_text, phase_lines
from ketadur.protocols.schema import Phase, Protocol

_WRAP = 44
_LINE_H = 0.19
_COL_W = 3.4
_GAP = 0.55


@dataclass
class _Box:
    x: float
    y_top: float
    height: float
    title: str
    lines: list[str]
    colour: str


def _box_for(phase: Phase, x: float, y_top: float, colour: str) -> _Box:
    lines = [
        w
        for line in phase_lines(phase)
        if not line.startswith("assess ")
        for w in textwrap.wrap(line, _WRAP, subsequent_indent="  ")
    ]
    title = f"{phase.name.replace('_', ' ')} ({phase.duration_days:g} d)"
    return _Box(x, y_top, (len(lines) + 1.6) * _LINE_H, title, lines, colour)


def _shared_prefix(protocol: Protocol) -> int:
    if len(protocol.arms) == 1:
        return len(protocol.arms[0].phases)
    n = 0
    for phases in zip(*(a.phases for a in protocol.arms), strict=False):
        if any(p != phases[0] for p in phases[1:]):
            break
        n += 1
    return n


def protocol_figure(protocol: Protocol) -> Figure:
    """The protocol as a flowchart (matplotlib Figure, no pyplot state)."""
    n_arms = len(protocol.arms)
    shared = _shared_prefix(protocol)
    width = max(1, n_arms) * _COL_W
    centre = width / 2.0
    boxes: list[_Box] = []
    arrows: list[tuple[float, float, float, float, str]] = []
    headers: list[tuple[float, float, str]] = []
    y = 0.0
    prev: _Box | None = None
    for phase in protocol.arms[0].phases[:shared]:
        box = _box_for(phase, centre, y, "#dbe9f6")
        if prev is not None:
            arrows.append(
                (prev.x, prev.y_top - prev.height, box.x, box.y_top, _label(phase, protocol))
            )
        boxes.append(box)
        y -= box.height + _GAP
        prev = box
    branches = shared < max(len(a.phases) for a in protocol.arms)
    split_y = y - 1.0 if branches else y  # room for the branch labels
    for i, arm in enumerate(protocol.arms if branches else ()):
        x = _COL_W * (i + 0.5)
        y_arm = split_y
        above = prev
        header = True
        for phase in arm.phases[shared:]:
            box = _box_for(phase, x, y_arm, "#fbe3d6" if i % 2 else "#e2f0d9")
            label = _label(phase, protocol)
            if header:  # the arm's name and entry criterion go just above its first box
                header_text = f"arm: {arm.name}" + (f"\n{label}" if label else "")
                headers.append((box.x - _COL_W * 0.46, box.y_top + 0.05, header_text))
                label = ""
                header = False
            if above is not None:
                arrows.append((above.x, above.y_top - above.height, box.x, box.y_top, label))
            boxes.append(box)
            y_arm -= box.height + _GAP
            above = box
    bottom = min(b.y_top - b.height for b in boxes)
    height_in = max(3.0, (0.3 - bottom) * 1.25 + 0.8)
    fig = Figure(figsize=(max(5.0, width * 1.25), height_in))
    ax = fig.add_subplot()
    ax.set_xlim(0, width)
    ax.set_ylim(bottom - 0.3, 0.3)
    ax.axis("off")
    title = protocol.title + (
        "  [PRECLINICAL HYPOTHESIS]" if protocol.evidence == "preclinical hypothesis" else ""
    )
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=10, weight="bold")
    for b in boxes:
        w = _COL_W * 0.92
        ax.add_patch(
            FancyBboxPatch(
                (b.x - w / 2, b.y_top - b.height),
                w,
                b.height,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=b.colour,
                edgecolor="#4a4a4a",
                linewidth=0.8,
            )
        )
        ax.text(b.x, b.y_top - 0.1, b.title, ha="center", va="top", fontsize=8, weight="bold")
        ax.text(
            b.x - w / 2 + 0.08,
            b.y_top - 0.1 - 1.1 * _LINE_H,
            "\n".join(b.lines),
            ha="left",
            va="top",
            fontsize=6.5,
            linespacing=1.25,
        )
    for x, y_text, text in headers:
        ax.text(x, y_text, text, fontsize=6.5, ha="left", va="bottom", color="#7a2e0e")
    for x0, y0, x1, y1, label in arrows:
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={"arrowstyle": "-|>", "color": "#4a4a4a", "lw": 0.9},
        )
        if label:
            ax.text(
                (x0 + x1) / 2 + 0.05,
                (y0 + y1) / 2,
                label,
                fontsize=6.5,
                ha="left",
                va="center",
                style="italic",
                color="#7a2e0e",
            )
    footer = (
        "Patients who do not meet an entry criterion stop treatment and are followed up. "
        "Generated by ketadur from the protocol file. Research use only."
    )
    wrap = int(fig.get_figwidth() * 17)
    fig.text(0.01, 0.005, "\n".join(textwrap.wrap(footer, wrap)), fontsize=6, color="#555555")
    return fig


def _label(phase: Phase, protocol: Protocol) -> str:
    text = entry_text(phase.entry, protocol)
    return "" if text == "all" else "\n".join(textwrap.wrap("entry: " + text, 34))


def protocol_dot(protocol: Protocol) -> str:
    """The same flowchart in Graphviz DOT."""
    lines = [f'digraph "{protocol.name}" {{', "  node [shape=box, style=rounded];"]
    for a, arm in enumerate(protocol.arms):
        prev = None
        for p, phase in enumerate(arm.phases):
            node = f"a{a}p{p}"
            body = "\\n".join(
                [f"{phase.name} ({phase.duration_days:g} d)", *phase_lines(phase)]
            ).replace('"', "'")
            lines.append(f'  {node} [label="{arm.name}: {body}"];')
            if prev is not None:
                label = entry_text(phase.entry, protocol).replace('"', "'")
                lines.append(f'  {prev} -> {node} [label="{label}"];')
            prev = node
    lines.append("}")
    return "\n".join(lines) + "\n"
