"""NONMEM-style event datasets: export a regimen (planned or given) and import one as a regimen.

Columns: ``ID, TIME`` (hours from day 0), ``EVID`` (0 observation, 1 dose, 2 other event),
``AMT`` (mg), ``RATE`` (mg/h; 0 for a bolus), ``CMT``, ``DV``, ``MDV``, then ``DVID`` (which
measure an observation is), ``DRUG``, ``EVT`` (what an EVID=2 row is), time-varying ``EXER``
(exercise sessions/week), ``SLEEP`` (h/night), ``AD`` (oral antidepressant, 0/1), and the
covariates ``WT`` (kg), ``AGE`` (years), ``MET`` (number of BDNF Met alleles).

Codes (documented so that another tool can read the file):

- ``CMT``: 1 central (IV), 2 nasal depot, 3 gut (oral), 4 intramuscular depot, 5 observation.
- ``DRUG``: 1 racemic ketamine, 2 esketamine, 8 midazolam (active placebo), 9 placebo.
- ``EVT``: 10 CBT, 11 mindfulness, 12 preparation, 13 integration session; 20/21 DUSP6 inhibitor
  start/stop; 30 lifestyle change (EXER, SLEEP); 40/41 oral antidepressant start/stop.
- ``DVID``: 1 MADRS, 2 CADSS, 3 systolic BP (mmHg), 4 plasma BDNF (ng/mL), 5 plasma ketamine
  (ng/mL).

Doses are written in mg with ``RATE`` in mg/h, as NONMEM expects; a dose given per kg comes back as
the same mg dose (the file does not know it was weight-based). That is the only thing a round trip
does not keep: it is lossless for everything NONMEM itself can express.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ketadur.errors import KetadurInputError
from ketadur.model.patient import Patient
from ketadur.regimen import (
    PLACEBOS,
    AdjunctWindow,
    Dose,
    LifestyleChange,
    MedicationWindow,
    Regimen,
    TherapySession,
)

CMT = {"iv": 1, "intranasal": 2, "oral": 3, "im": 4}
OBSERVATION_CMT = 5
DRUG = {"racemic_ketamine": 1, "esketamine": 2, "midazolam": 8, "placebo": 9}
SESSION_EVT = {"cbt": 10, "mindfulness": 11, "preparation": 12, "integration": 13}
ADJUNCT_START, ADJUNCT_STOP, LIFESTYLE, AD_START, AD_STOP = 20, 21, 30, 40, 41
DVID = {"madrs": 1, "cadss": 2, "vitals": 3, "plasma_bdnf": 4, "plasma_ketamine": 5}
COLUMNS = [
    "ID", "TIME", "EVID", "AMT", "RATE", "CMT", "DV", "MDV", "DVID", "DRUG", "EVT",
    "EXER", "SLEEP", "AD", "WT", "AGE", "MET",
]  # fmt: skip


def to_nonmem(
    regimen: Regimen,
    patient: Patient,
    subject: int = 1,
    observations: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The regimen (and optional ``observations`` with ``t_days, measure, value``) as rows.

    ``subject`` is the numeric ``ID`` (NONMEM needs numbers; keep the map to pseudonymous subject
    ids in the study, not in this file).
    """
    rows: list[dict] = []

    def row(t_days: float, evid: int, **kw: float) -> None:
        rows.append({"TIME": t_days * 24.0, "EVID": evid, **kw})

    for d in regimen.doses:
        amount = d.amount_mg(patient.weight_kg)
        rate = amount / (d.infusion_minutes / 60.0) if d.infusion_minutes > 0 else 0.0
        row(d.day, 1, AMT=amount, RATE=rate, CMT=CMT[d.route], DRUG=DRUG[d.drug])
    for s in regimen.sessions:
        row(s.day, 2, EVT=SESSION_EVT[s.kind])
    for a in regimen.adjuncts:
        row(a.start_day, 2, EVT=ADJUNCT_START)
        row(a.end_day, 2, EVT=ADJUNCT_STOP)
    for c in regimen.lifestyle:
        row(c.start_day, 2, EVT=LIFESTYLE)
    for m in regimen.medications:
        row(m.start_day, 2, EVT=AD_START)
        if m.end_day is not None:
            row(m.end_day, 2, EVT=AD_STOP)
    if observations is not None:
        for obs in observations.itertuples(index=False):
            row(float(obs.t_days), 0, DV=float(obs.value), DVID=DVID[obs.measure])
    frame = pd.DataFrame(rows, columns=["TIME", "EVID", "AMT", "RATE", "CMT", "DV", "DVID",
                                        "DRUG", "EVT"])  # fmt: skip
    frame = frame.fillna(0.0)
    frame["CMT"] = np.where(frame["EVID"] == 0, OBSERVATION_CMT, frame["CMT"])
    frame["MDV"] = (frame["EVID"] != 0).astype(int)
    # Dosing records first at equal times would make NONMEM observe after the dose: observations
    # (pre-dose ratings) come first, then events, then doses.
    frame["_order"] = frame["EVID"].map({0: 0, 2: 1, 1: 2})
    frame = frame.sort_values(["TIME", "_order"], kind="stable").drop(columns="_order")
    frame.insert(0, "ID", subject)
    _time_varying(frame, regimen, patient)
    frame["WT"] = patient.weight_kg
    frame["AGE"] = patient.age_years
    frame["MET"] = patient.met_alleles
    for col in ("EVID", "CMT", "DVID", "DRUG", "EVT", "AD", "MET"):
        frame[col] = frame[col].astype(int)
    return frame[COLUMNS].reset_index(drop=True)


def _time_varying(frame: pd.DataFrame, regimen: Regimen, patient: Patient) -> None:
    """EXER, SLEEP and AD in force at each row (lifestyle changes apply from their row on)."""
    t_days = frame["TIME"].to_numpy() / 24.0
    exer = np.full(t_days.size, patient.habitual_exercise_sessions_per_week, dtype=float)
    sleep = np.full(t_days.size, patient.habitual_sleep_h_per_night, dtype=float)
    for change in sorted(regimen.lifestyle, key=lambda c: c.start_day):
        on = t_days >= change.start_day
        exer[on] = change.exercise_sessions_per_week
        sleep[on] = change.sleep_h_per_night
    ad = np.full(t_days.size, int(patient.background_antidepressant))
    for m in regimen.medications:
        end = np.inf if m.end_day is None else m.end_day
        ad[(t_days >= m.start_day) & (t_days < end)] = 1
    frame["EXER"], frame["SLEEP"], frame["AD"] = exer, sleep, ad


def write_nonmem(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a dataset as CSV with full float precision."""
    frame.to_csv(path, index=False, float_format="%.17g")


def read_nonmem(path: str | Path, subject: int | None = None) -> tuple[Regimen, pd.DataFrame]:
    """A fixed regimen (and the observations) of one ``ID`` of a NONMEM-style CSV file.

    Doses come back as fixed mg doses. Raises :class:`KetadurInputError` naming the row and column
    of anything that cannot be read.
    """
    try:
        frame = pd.read_csv(path, float_precision="round_trip")
    except (OSError, ValueError) as exc:
        raise KetadurInputError("file", f"cannot be read as CSV: {exc}", str(path)) from None
    required = {"ID", "TIME", "EVID", "AMT", "RATE", "CMT"}
    missing = sorted(required - set(frame.columns))
    if missing:
        raise KetadurInputError("file", f"missing columns {missing}", str(path))
    ids = frame["ID"].unique()
    if subject is None:
        if len(ids) != 1:
            raise KetadurInputError("ID", "the file holds several subjects; choose one", list(ids))
        subject = int(ids[0])
    rows = frame[frame["ID"] == subject]
    if rows.empty:
        raise KetadurInputError("ID", "no such subject in the file", subject)
    return _regimen_from_rows(rows), _observations_from_rows(rows)


def _col(r: pd.Series, name: str, default: float = 0.0) -> float:
    value = r.get(name, default)
    return default if pd.isna(value) else float(value)


def _regimen_from_rows(rows: pd.DataFrame) -> Regimen:
    doses, sessions, adjuncts, lifestyle, meds = [], [], [], [], []
    adjunct_open: float | None = None
    ad_open: float | None = None
    routes = {v: k for k, v in CMT.items()}
    drugs = {v: k for k, v in DRUG.items()}
    sessions_by_code = {v: k for k, v in SESSION_EVT.items()}
    for i, r in rows.iterrows():
        at = f"row {int(i) + 2}"  # the CSV line (header is line 1)
        day = round(_col(r, "TIME") / 24.0, 12)
        evid = int(_col(r, "EVID"))
        if evid == 1:
            route = routes.get(int(_col(r, "CMT")))
            drug = drugs.get(int(_col(r, "DRUG", 1)))
            if route is None or drug is None:
                codes = (r.get("CMT"), r.get("DRUG"))
                raise KetadurInputError(f"{at}.CMT/DRUG", "unknown dosing code", codes)
            amount, rate = _col(r, "AMT"), _col(r, "RATE")
            minutes = round(60.0 * amount / rate, 9) if rate > 0 else 0.0
            if drug in PLACEBOS:
                doses.append(Dose(day=day, drug=drug, route=route))
            else:
                doses.append(
                    Dose(day=day, drug=drug, route=route, dose_mg=amount, infusion_minutes=minutes)
                )
        elif evid == 2:
            code = int(_col(r, "EVT"))
            if code in sessions_by_code:
                sessions.append(TherapySession(day=day, kind=sessions_by_code[code]))
            elif code == ADJUNCT_START:
                adjunct_open = day
            elif code == ADJUNCT_STOP and adjunct_open is not None:
                adjuncts.append(AdjunctWindow(start_day=adjunct_open, end_day=day))
                adjunct_open = None
            elif code == LIFESTYLE:
                lifestyle.append(
                    LifestyleChange(
                        start_day=day,
                        exercise_sessions_per_week=_col(r, "EXER"),
                        sleep_h_per_night=_col(r, "SLEEP", 7.0),
                    )
                )
            elif code == AD_START:
                ad_open = day
            elif code == AD_STOP and ad_open is not None:
                meds.append(MedicationWindow(start_day=ad_open, end_day=day))
                ad_open = None
            else:
                raise KetadurInputError(f"{at}.EVT", "unknown or unmatched event code", code)
        elif evid != 0:
            raise KetadurInputError(f"{at}.EVID", "must be 0, 1 or 2", evid)
    if ad_open is not None:
        meds.append(MedicationWindow(start_day=ad_open))
    if adjunct_open is not None:
        raise KetadurInputError("EVT", "a DUSP6-inhibitor start without a stop", ADJUNCT_START)
    return Regimen(
        name="nonmem import",
        doses=tuple(doses),
        sessions=tuple(sessions),
        adjuncts=tuple(adjuncts),
        lifestyle=tuple(lifestyle),
        medications=tuple(meds),
    )


def _observations_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    obs = rows[rows["EVID"] == 0]
    measures = {v: k for k, v in DVID.items()}
    dvid = obs["DVID"] if "DVID" in obs else pd.Series(1, index=obs.index)
    return pd.DataFrame(
        {
            "t_days": obs["TIME"].to_numpy() / 24.0,
            "measure": [measures.get(int(v), f"dvid_{int(v)}") for v in dvid],
            "value": obs["DV"].to_numpy() if "DV" in obs else np.nan,
        }
    )
