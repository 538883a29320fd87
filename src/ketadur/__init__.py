"""ketadur: simulate, design and test ways to make ketamine's antidepressant effect last.

Research software. Every output about a patient is a model-based hypothesis, never a dosing
instruction.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ketadur.engine.vector_width import prefer_wide_vectors

prefer_wide_vectors()  # before anything imports Numba

from ketadur.engine.reference import SimulationResult, SolverSettings, simulate
from ketadur.errors import KetadurInputError
from ketadur.model.parameters import REGISTRY, Parameter, ParameterSet
from ketadur.model.patient import TYPICAL_PATIENT, LifeEvent, Patient
from ketadur.regimen import (
    AdjunctWindow,
    Dose,
    LifestyleChange,
    Regimen,
    TherapySession,
    iv_infusions,
    single_infusion,
    six_infusions,
    weekly_sessions,
)

__all__ = [
    "REGISTRY",
    "TYPICAL_PATIENT",
    "AdjunctWindow",
    "Dose",
    "KetadurInputError",
    "LifeEvent",
    "LifestyleChange",
    "Parameter",
    "ParameterSet",
    "Patient",
    "Regimen",
    "SimulationResult",
    "SolverSettings",
    "TherapySession",
    "__version__",
    "iv_infusions",
    "simulate",
    "single_infusion",
    "six_infusions",
    "weekly_sessions",
]
