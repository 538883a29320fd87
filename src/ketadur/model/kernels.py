"""The cascade and synapse equations wired together as array functions, once, for every engine.

:func:`make_kernels` composes the per-quantity functions of :mod:`~ketadur.model.cascade` and
:mod:`~ketadur.model.synapse_mood` into the right-hand side of the nonlinear states and into the
observed signals. It takes a ``jit`` decorator: the reference engine uses the plain Python
functions, the fast population engine the same functions compiled by Numba. Both engines therefore
integrate one set of equations; they differ only in how they integrate them.

Arguments are plain floats, arrays and the constants named tuples, so that Numba can compile them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ketadur.model import cascade as cas
from ketadur.model import synapse_mood as syn

NONLINEAR_STATES = (
    "glutamate",
    "bdnf",
    "erk",
    "dusp6",
    "potentiation",
    "structural",
    "stabilised",
    "homeostasis",
    "tolerance",
    "consolidated",
    "situational",
    "expectancy",
    "acute",
)
"""Cascade and synapse states, in the order of the state vector after the PK block."""

SIGNALS = (
    "nmda_occupancy",
    "ampa",
    "trkb",
    "mtorc1",
    "decay_rate",
    "relief",
    "madrs",
    "cadss",
    "sbp_mmhg",
    "plasma_bdnf_ng_per_ml",
)
"""Algebraic signals computed by ``observe``, in the order of its output array."""


class Kernels(NamedTuple):
    """``rhs(y, conc_um, u, cc, sc, dy)`` fills ``dy`` (per hour) for the nonlinear states ``y``
    given unbound effect-site concentrations ``conc_um`` (S-, R-ketamine, S-, R-norketamine, uM) and
    inputs ``u``; ``derivatives(y, conc_um, u, cc, sc)`` returns them as a tuple (``y``,
    ``conc_um`` and ``u`` may then be tuples too: the fast engine's lanes pass one patient's
    values that way, so that the compiler can vectorise across patients).
    ``observe(y, conc_um, plasma_ketamine_ng_per_ml, u, cc, sc, out)`` fills ``out`` with
    :data:`SIGNALS`. ``session_jump(consolidated, potentiation, weight, sc)`` is the therapy
    jump. ``loss(y, conc_um, u, cc, sc, d)`` fills ``d`` (per hour) with each state's first-order
    loss rate: every state's derivative is a production that does not depend on the state itself,
    minus ``d`` times the state (the fast engine treats that part implicitly); ``loss_rates``
    returns them as a tuple."""

    rhs: Callable
    observe: Callable
    session_jump: Callable
    loss: Callable
    derivatives: Callable
    loss_rates: Callable


def make_kernels(jit: Callable[[Callable], Callable], integer_hill: bool = False) -> Kernels:
    """The model's wiring, each model function passed through ``jit`` (identity or a compiler).
    ``integer_hill``: for patients whose mTORC1 Hill coefficient is an integer in [0, 8] only
    (:func:`~ketadur.model.cascade.mtorc1_activity_integer_hill`, which vectorises)."""
    occupancy = jit(cas.nmda_occupancy)
    ampa_throughput = jit(cas.ampa_throughput)
    trkb_activation = jit(cas.trkb_activation)
    mtorc1_activity = jit(cas.mtorc1_activity_integer_hill if integer_hill else cas.mtorc1_activity)
    d_glutamate = jit(cas.d_glutamate)
    d_bdnf = jit(cas.d_bdnf)
    d_erk = jit(cas.d_erk)
    d_dusp6 = jit(cas.d_dusp6)
    decay_rate = jit(syn.structural_decay_rate)
    d_potentiation = jit(syn.d_potentiation)
    d_structural = jit(syn.d_structural)
    d_stabilised = jit(syn.d_stabilised)
    d_homeostasis = jit(syn.d_homeostasis)
    d_tolerance = jit(syn.d_tolerance)
    d_consolidated = jit(syn.d_consolidated)
    d_situational = jit(syn.d_situational)
    d_expectancy = jit(syn.d_expectancy)
    d_acute = jit(syn.d_acute)
    relief = jit(syn.relief)
    madrs = jit(syn.madrs)
    cadss = jit(syn.cadss)
    sbp = jit(syn.sbp)
    plasma_bdnf = jit(syn.plasma_bdnf)
    session_jump = jit(syn.session_consolidation)

    def derivatives(y, conc_um, u, cc, sc):
        occ = occupancy(conc_um[0], conc_um[1], conc_um[2], conc_um[3], cc)
        glu, bdnf, erk, dusp6 = y[0], y[1], y[2], y[3]
        pot, struc, stab, homeo, tol, cons, situ = y[4], y[5], y[6], y[7], y[8], y[9], y[10]
        ampa = ampa_throughput(glu, pot, cc)
        trkb = trkb_activation(bdnf, cc)
        mtor = mtorc1_activity(trkb, erk, cc)
        rate = decay_rate(erk, homeo, u[4], u[3], sc)
        return (
            d_glutamate(glu, occ, tol, cc),
            d_bdnf(bdnf, ampa, struc, u[3], u[5], cc),
            d_erk(erk, trkb, dusp6, u[2], cc),
            d_dusp6(dusp6, erk, cc),
            d_potentiation(pot, mtor, sc),
            d_structural(struc, pot, rate, sc),
            d_stabilised(stab, struc, erk, rate, sc),
            d_homeostasis(homeo, glu, sc),
            d_tolerance(tol, occ, sc),
            d_consolidated(cons, sc),
            d_situational(situ, sc),
            d_expectancy(y[11], u[6], sc),
            d_acute(y[12], occ, cc.trkb_present, sc),
        )

    jit_derivatives = jit(derivatives)

    def rhs(y, conc_um, u, cc, sc, dy):
        d = jit_derivatives(y, conc_um, u, cc, sc)
        for i in range(len(d)):
            dy[i] = d[i]

    def observe(y, conc_um, plasma_ketamine_ng_per_ml, u, cc, sc, out):
        occ = occupancy(conc_um[0], conc_um[1], conc_um[2], conc_um[3], cc)
        glu, bdnf, erk = y[0], y[1], y[2]
        pot, struc, stab, homeo, cons, situ = y[4], y[5], y[6], y[7], y[9], y[10]
        trkb = trkb_activation(bdnf, cc)
        rel = relief(y[12], pot, struc, stab, cons, y[11], sc)
        out[0] = occ
        out[1] = ampa_throughput(glu, pot, cc)
        out[2] = trkb
        out[3] = mtorc1_activity(trkb, erk, cc)
        out[4] = decay_rate(erk, homeo, u[4], u[3], sc)
        out[5] = rel
        out[6] = madrs(rel, situ, sc)
        out[7] = cadss(occ, sc)
        out[8] = sbp(plasma_ketamine_ng_per_ml, sc)
        out[9] = plasma_bdnf(bdnf, sc)

    def loss_rates(y, conc_um, u, cc, sc):
        # Each derivative is affine in its own state, f = p - d * y, so d = f(y=0) - f(y=1):
        # the model's own functions give the rates, with nothing written twice.
        occ = occupancy(conc_um[0], conc_um[1], conc_um[2], conc_um[3], cc)
        glu, bdnf, erk, dusp6 = y[0], y[1], y[2], y[3]
        pot, struc, homeo, tol = y[4], y[5], y[7], y[8]
        ampa = ampa_throughput(glu, pot, cc)
        trkb = trkb_activation(bdnf, cc)
        mtor = mtorc1_activity(trkb, erk, cc)
        rate = decay_rate(erk, homeo, u[4], u[3], sc)
        return (
            d_glutamate(0.0, occ, tol, cc) - d_glutamate(1.0, occ, tol, cc),
            d_bdnf(0.0, ampa, struc, u[3], u[5], cc) - d_bdnf(1.0, ampa, struc, u[3], u[5], cc),
            d_erk(0.0, trkb, dusp6, u[2], cc) - d_erk(1.0, trkb, dusp6, u[2], cc),
            d_dusp6(0.0, erk, cc) - d_dusp6(1.0, erk, cc),
            d_potentiation(0.0, mtor, sc) - d_potentiation(1.0, mtor, sc),
            d_structural(0.0, pot, rate, sc) - d_structural(1.0, pot, rate, sc),
            d_stabilised(0.0, struc, erk, rate, sc) - d_stabilised(1.0, struc, erk, rate, sc),
            d_homeostasis(0.0, glu, sc) - d_homeostasis(1.0, glu, sc),
            d_tolerance(0.0, occ, sc) - d_tolerance(1.0, occ, sc),
            d_consolidated(0.0, sc) - d_consolidated(1.0, sc),
            d_situational(0.0, sc) - d_situational(1.0, sc),
            d_expectancy(0.0, u[6], sc) - d_expectancy(1.0, u[6], sc),
            d_acute(0.0, occ, cc.trkb_present, sc) - d_acute(1.0, occ, cc.trkb_present, sc),
        )

    jit_loss_rates = jit(loss_rates)

    def loss(y, conc_um, u, cc, sc, d):
        rates = jit_loss_rates(y, conc_um, u, cc, sc)
        for i in range(len(rates)):
            d[i] = rates[i]

    return Kernels(jit(rhs), jit(observe), session_jump, jit(loss), jit_derivatives, jit_loss_rates)


PYTHON_KERNELS = make_kernels(lambda f: f)
"""The kernels as plain Python (the reference engine's)."""
