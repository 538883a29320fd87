"""The signalling-cascade diagram, generated from the model's own equations.

Nodes and edges come from :data:`ketadur.model.system.GRAPH`: each quantity's defining function and
its argument names. Each edge's sign (activating or inhibiting) is measured by perturbing that
argument at a reference state (6 hours after a 0.5 mg/kg infusion). Nothing is drawn by hand, so the
diagram changes when the equations do.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from ketadur.engine.reference import simulate
from ketadur.model import pk
from ketadur.model.patient import TYPICAL_PATIENT
from ketadur.model.system import GRAPH, INPUT_NAMES, compile_model
from ketadur.regimen import single_infusion

_REFERENCE_DAY = 0.25
_LABELS = {
    "s_ketamine": "S-ketamine\n(brain)",
    "r_ketamine": "R-ketamine\n(brain)",
    "s_norketamine": "S-norketamine",
    "r_norketamine": "R-norketamine",
    "occupancy": "NMDA receptor\nblock",
    "glutamate": "glutamate\nsurge",
    "ampa": "AMPA\nthroughput",
    "bdnf": "BDNF\nrelease",
    "trkb": "TrkB",
    "trkb_present": "TrkB\nreceptor",
    "acute": "acute response\n(rapid BDNF)",
    "erk": "ERK",
    "dusp6": "DUSP6",
    "mtorc1": "mTORC1",
    "potentiation": "functional\npotentiation",
    "structural": "synaptogenesis\n(structural)",
    "stabilised": "stabilised\nsynapses",
    "decay_rate": "homeostatic\ndecay",
    "homeostasis": "counter-\nregulation",
    "tolerance": "tolerance",
    "consolidated": "psychotherapy\nconsolidation",
    "situational": "situational\ndepression",
    "relief_fraction": "antidepressant\nrelief",
    "madrs": "MADRS",
    "cadss": "dissociation\n(CADSS)",
    "dusp6_inhibitor": "DUSP6\ninhibitor",
    "exercise_change": "exercise",
    "sleep_deficit_change": "sleep loss",
    "oral_antidepressant": "oral\nantidepressant",
    "therapy_session": "psychotherapy\nsession",
}


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` enters the definition of ``target``; ``sign`` is +1 (raises) or -1 (lowers)."""

    source: str
    target: str
    sign: int


def cascade_edges() -> list[Edge]:
    """Every dependency in the model's cascade with its measured sign (self-decay omitted)."""
    model = compile_model(TYPICAL_PATIENT)
    ref = _reference_values(model)
    edges = []
    for node, fn in GRAPH:
        params = [p for p in inspect.signature(fn).parameters if p != "k"]
        k = model.cc if fn.__module__.endswith("cascade") else model.sc
        base = {p: ref[p] for p in params}
        f0 = fn(k=k, **base)
        for p in params:
            if p == node:
                continue
            bumped = dict(base)
            step = 1e-4 * (abs(base[p]) + 1.0)
            bumped[p] = base[p] + step
            f1 = fn(k=k, **bumped)
            sign = 1 if f1 > f0 else -1 if f1 < f0 else _sign_at_unit(fn, k, base, p)
            edges.append(Edge(p, node, sign))
    return edges


def _sign_at_unit(fn, k, base: dict, p: str) -> int:
    """Sign where the reference state sits on a flat part (e.g. an inactive input): probe at 1."""
    low = dict(base)
    high = dict(base)
    low[p], high[p] = 0.0, 1.0
    return 1 if fn(k=k, **high) >= fn(k=k, **low) else -1


def _reference_values(model) -> dict[str, float]:
    res = simulate(single_infusion(), t_end_days=1.0)
    i = int(np.argmin(np.abs(res.table["t_days"].to_numpy() - _REFERENCE_DAY)))
    ref = {c: float(res.table[c].iloc[i]) for c in res.table.columns}
    ref.update({c: float(res.states[c].iloc[i]) for c in res.states.columns})
    y = res.states.drop(columns="t_days").iloc[i].to_numpy()
    ref.update({k: float(v) for k, v in pk.unbound_effect_site_um(model.pkc, y).items()})
    signals = model.signals(y, np.zeros(len(INPUT_NAMES)))
    ref.update(signals)
    ref["relief_fraction"] = ref["relief"]
    ref.update({name: 0.0 for name in INPUT_NAMES})
    ref["therapy_session"] = 1.0
    ref["trkb_present"] = model.cc.trkb_present
    return ref


def to_dot(edges: list[Edge]) -> str:
    """Graphviz DOT text of the cascade (-> activates, -| inhibits)."""
    lines = ["digraph ketadur_cascade {", "  rankdir=TB; node [shape=box, style=rounded];"]
    for name in sorted({e.source for e in edges} | {e.target for e in edges}):
        label = _LABELS.get(name, name).replace("\n", "\\n")
        lines.append(f'  {name} [label="{label}"];')
    for e in edges:
        arrow = "normal" if e.sign > 0 else "tee"
        lines.append(f"  {e.source} -> {e.target} [arrowhead={arrow}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(edges: list[Edge]) -> dict[str, int]:
    """Longest-path layering from the drug inputs, ignoring edges that close feedback loops."""
    nodes = sorted({e.source for e in edges} | {e.target for e in edges})
    order = [n for n, _ in GRAPH]
    rank = {n: (order.index(n) if n in order else -1) for n in nodes}
    layer = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):
        for e in edges:
            if rank[e.source] < rank[e.target]:
                layer[e.target] = max(layer[e.target], layer[e.source] + 1)
    return layer


def plot_cascade(edges: list[Edge] | None = None) -> Figure:
    """The signalling cascade as a figure: green arrows activate, red bars inhibit, dashed edges
    close feedback loops."""
    edges = edges if edges is not None else cascade_edges()
    layer = _layers(edges)
    by_layer: dict[int, list[str]] = {}
    for n, lay in sorted(layer.items(), key=lambda kv: kv[1]):
        by_layer.setdefault(lay, []).append(n)
    pos = {}
    n_layers = max(by_layer) + 1
    for lay, names in by_layer.items():
        for j, n in enumerate(names):
            pos[n] = ((j + 1) / (len(names) + 1), 1.0 - (lay + 0.5) / n_layers)
    fig = Figure(figsize=(12, 11), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    for e in edges:
        (x0, y0), (x1, y1) = pos[e.source], pos[e.target]
        feedback = layer[e.source] >= layer[e.target]
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>" if e.sign > 0 else "-[",
                mutation_scale=12,
                color="tab:green" if e.sign > 0 else "tab:red",
                lw=1.0,
                ls="--" if feedback else "-",
                connectionstyle="arc3,rad=0.25" if feedback else "arc3,rad=0.0",
                shrinkA=18,
                shrinkB=18,
                alpha=0.8,
            )
        )
    for n, (x, y) in pos.items():
        ax.text(
            x,
            y,
            _LABELS.get(n, n),
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.3"},
        )
    ax.set_title("Ketamine's antidepressant signalling cascade, generated from ketadur's equations")
    return fig
