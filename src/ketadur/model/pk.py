"""Pharmacokinetics of racemic ketamine and esketamine: a linear model written once as a matrix.

Per enantiomer (S and R, tracked separately because their NMDA affinities differ):

- three absorption depots (intranasal, oral, intramuscular) and a presystemic-norketamine depot
  (norketamine formed during first pass of a swallowed dose, absorbed at the oral rate);
- a two-compartment disposition model (central, peripheral) with first-order elimination,
  a fraction of which forms norketamine (one compartment);
- a ``cleared`` accumulator, so that mass balance can be checked exactly;
- effect-site (brain) concentrations of ketamine and norketamine.

Racemic ketamine splits 50:50 into S and R; esketamine is all S. The S- and R- chains share the
racemic disposition parameters (S and R clearances differ by <6%: 1620 vs 1530 mL/min,
Anesthesiology 2021;135:326). Amounts are in mg of ketamine-equivalent, so norketamine mass balance
needs no molar-mass factor; concentrations of norketamine are converted to its own mass where
reported.

Time is in hours. The PK block is linear: ``dx/dt = A x + B u`` with ``u = (IV rate S, IV rate R)``
in mg/h; :func:`pk_matrices` returns ``A`` and ``B`` and the reference engine's right-hand side uses
the same matrices, so the closed-form solution (matrix exponential) tests the same model.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ketadur.model.parameters import ParameterSet
from ketadur.regimen import Dose

ENANTIOMERS = ("s", "r")
PK_LOCAL = (
    "depot_nasal",
    "depot_oral",
    "depot_im",
    "depot_presystemic_nk",
    "central",
    "peripheral",
    "norketamine",
    "cleared",
    "ce_ketamine",
    "ce_norketamine",
)
"""Per-enantiomer PK states. Amounts in mg ketamine-equivalent; ``ce_*`` in mg/L."""

PK_STATES = tuple(f"{name}_{e}" for e in ENANTIOMERS for name in PK_LOCAL)
N_PK = len(PK_STATES)
AMOUNT_STATES = tuple(s for s in PK_STATES if not s.startswith("ce_"))
"""States that hold drug mass (everything except the virtual effect-site concentrations)."""


def pk_index(name: str, enantiomer: str) -> int:
    """Index of PK state ``name`` for enantiomer ``'s'`` or ``'r'`` in the PK block."""
    return ENANTIOMERS.index(enantiomer) * len(PK_LOCAL) + PK_LOCAL.index(name)


class PKConstants(NamedTuple):
    """Per-hour rate constants and volumes for one patient (weight applied)."""

    v1_l: float
    v_nk_l: float
    k10: float
    k12: float
    k21: float
    k_nk: float
    ke0: float
    ke0_nk: float
    f_nk: float
    ka_nasal: float
    ka_oral: float
    ka_im: float
    f_nasal: float
    f_oral: float
    f_im: float
    f_presys_nk: float
    fu: float
    mw_k: float
    mw_nk: float

    @classmethod
    def from_params(cls, p: ParameterSet, weight_kg: float) -> PKConstants:
        """Convert registry values to per-hour constants for a patient of ``weight_kg``."""
        v_nk = p["v_norketamine_l_per_kg"] * weight_kg
        return cls(
            v1_l=p["v1_l_per_kg"] * weight_kg,
            v_nk_l=v_nk,
            k10=p["k10_per_min"] * 60.0,
            k12=p["k12_per_min"] * 60.0,
            k21=p["k21_per_min"] * 60.0,
            k_nk=p["cl_norketamine_l_per_h_per_kg"] * weight_kg / v_nk,
            ke0=p["ke0_per_min"] * 60.0,
            ke0_nk=p["ke0_norketamine_per_min"] * 60.0,
            f_nk=p["fraction_to_norketamine"],
            ka_nasal=p["ka_intranasal_per_h"],
            ka_oral=p["ka_oral_per_h"],
            ka_im=p["ka_im_per_h"],
            f_nasal=p["bioavailability_intranasal"],
            f_oral=p["bioavailability_oral"],
            f_im=p["bioavailability_im"],
            f_presys_nk=p["fraction_presystemic_to_norketamine"],
            fu=p["fraction_unbound"],
            mw_k=p["mw_ketamine_g_per_mol"],
            mw_nk=p["mw_norketamine_g_per_mol"],
        )


def pk_matrices(c: PKConstants) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``A`` (N_PK x N_PK) and ``B`` (N_PK x 2) of the linear PK system, time in hours.

    ``u = (IV infusion rate of S, of R)`` in mg/h enters the central compartments. With constants
    holding arrays (one value per patient), ``A`` has shape (n, N_PK, N_PK).
    """
    shape = np.shape(c.k10)
    a = np.zeros((*shape, N_PK, N_PK))
    b = np.zeros((N_PK, 2))
    for j, e in enumerate(ENANTIOMERS):

        def i(name: str, e: str = e) -> int:
            return pk_index(name, e)

        nasal, oral, im, pre = (
            i("depot_nasal"),
            i("depot_oral"),
            i("depot_im"),
            i("depot_presystemic_nk"),
        )
        cen, per, nk, clr = i("central"), i("peripheral"), i("norketamine"), i("cleared")
        cek, cenk = i("ce_ketamine"), i("ce_norketamine")
        a[..., nasal, nasal] = -c.ka_nasal
        a[..., oral, oral] = -c.ka_oral
        a[..., im, im] = -c.ka_im
        a[..., pre, pre] = -c.ka_oral
        a[..., cen, nasal] = c.ka_nasal
        a[..., cen, oral] = c.ka_oral
        a[..., cen, im] = c.ka_im
        a[..., cen, cen] = -(c.k10 + c.k12)
        a[..., cen, per] = c.k21
        a[..., per, cen] = c.k12
        a[..., per, per] = -c.k21
        a[..., nk, cen] = c.f_nk * c.k10
        a[..., nk, pre] = c.ka_oral
        a[..., nk, nk] = -c.k_nk
        a[..., clr, cen] = (1.0 - c.f_nk) * c.k10
        a[..., clr, nk] = c.k_nk
        a[..., cek, cen] = c.ke0 / c.v1_l
        a[..., cek, cek] = -c.ke0
        a[..., cenk, nk] = c.ke0_nk / c.v_nk_l
        a[..., cenk, cenk] = -c.ke0_nk
        b[cen, j] = 1.0
    return a, b


def enantiomer_split(dose: Dose) -> dict[str, float]:
    """Fraction of a dose that is S- and R-ketamine."""
    if dose.drug == "esketamine":
        return {"s": 1.0, "r": 0.0}
    return {"s": 0.5, "r": 0.5}


def bolus_jump(c: PKConstants, dose: Dose, amount_mg: float) -> NDArray[np.float64]:
    """Increment of the PK block caused by a bolus (any non-infused dose) of ``amount_mg``.

    Extravascular doses put the bioavailable fraction in their depot; of the rest, the presystemic
    norketamine fraction goes to its depot and the remainder is recorded as cleared. With arrays
    (one value per patient) in ``c`` or ``amount_mg``, the result has shape (N_PK, n).
    """
    jump = np.zeros((N_PK, *np.broadcast(c.f_oral, amount_mg).shape))
    route_depot = {"intranasal": ("depot_nasal", c.f_nasal), "oral": ("depot_oral", c.f_oral)}
    for e, frac in enantiomer_split(dose).items():
        amount = amount_mg * frac
        if dose.route == "iv":
            jump[pk_index("central", e)] += amount
        elif dose.route == "im":
            jump[pk_index("depot_im", e)] += c.f_im * amount
            jump[pk_index("cleared", e)] += (1.0 - c.f_im) * amount
        else:
            depot, f = route_depot[dose.route]
            jump[pk_index(depot, e)] += f * amount
            jump[pk_index("depot_presystemic_nk", e)] += (1.0 - f) * c.f_presys_nk * amount
            jump[pk_index("cleared", e)] += (1.0 - f) * (1.0 - c.f_presys_nk) * amount
    return jump


def infusion_rates_mg_per_h(dose: Dose, amount_mg: float) -> NDArray[np.float64]:
    """(S, R) central input rates in mg/h during an IV infusion of ``amount_mg``."""
    rate = amount_mg / (dose.infusion_minutes / 60.0)
    split = enantiomer_split(dose)
    return np.array([rate * split["s"], rate * split["r"]])


def plasma_ketamine_ng_per_ml(c: PKConstants, y_pk: NDArray[np.float64]) -> NDArray[np.float64]:
    """Total (S+R) plasma ketamine, ng/mL; ``y_pk`` has PK states along axis 0."""
    total = y_pk[pk_index("central", "s")] + y_pk[pk_index("central", "r")]
    return total / c.v1_l * 1000.0


def plasma_norketamine_ng_per_ml(c: PKConstants, y_pk: NDArray[np.float64]) -> NDArray[np.float64]:
    """Total plasma norketamine, ng/mL of norketamine itself (molar-mass corrected)."""
    total = y_pk[pk_index("norketamine", "s")] + y_pk[pk_index("norketamine", "r")]
    return total / c.v_nk_l * 1000.0 * (c.mw_nk / c.mw_k)


def unbound_effect_site_um(c: PKConstants, y_pk: NDArray[np.float64]) -> dict[str, NDArray]:
    """Unbound brain concentrations (uM) of S/R-ketamine and S/R-norketamine."""
    to_um = c.fu * 1000.0 / c.mw_k  # mg-equivalent/L -> uM of molecules, unbound
    return {
        "s_ketamine": y_pk[pk_index("ce_ketamine", "s")] * to_um,
        "r_ketamine": y_pk[pk_index("ce_ketamine", "r")] * to_um,
        "s_norketamine": y_pk[pk_index("ce_norketamine", "s")] * to_um,
        "r_norketamine": y_pk[pk_index("ce_norketamine", "r")] * to_um,
    }
