"""The cascade diagram is generated from the equations and shows the seed's signalling chain."""

from __future__ import annotations

from ketadur.reports.diagram import cascade_edges, plot_cascade


def test_seed_cascade_chain_and_feedbacks_are_present():
    edges = {(e.source, e.target): e.sign for e in cascade_edges()}
    chain = [
        ("s_ketamine", "occupancy"),
        ("occupancy", "glutamate"),
        ("glutamate", "ampa"),
        ("ampa", "bdnf"),
        ("bdnf", "trkb"),
        ("trkb", "erk"),
        ("trkb", "mtorc1"),
        ("erk", "mtorc1"),
        ("mtorc1", "potentiation"),
        ("potentiation", "structural"),
        ("erk", "dusp6"),
        ("dusp6_inhibitor", "erk"),
        ("potentiation", "consolidated"),
        ("therapy_session", "consolidated"),
    ]
    for edge in chain:
        assert edges.get(edge) == 1, edge
    assert edges[("dusp6", "erk")] == -1  # DUSP6 dephosphorylates ERK
    assert edges[("erk", "decay_rate")] == -1  # sustained ERK slows homeostatic decay
    assert edges[("tolerance", "glutamate")] == -1
    assert edges[("relief_fraction", "madrs")] == -1


def test_plot_cascade_returns_figure():
    fig = plot_cascade()
    assert fig.axes and fig.axes[0].texts
