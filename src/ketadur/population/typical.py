"""Population-level parameter values: typical values and inter-individual CVs.

A virtual patient's parameter is ``typical * exp(eta)``, with ``eta`` drawn from the preset's IIV.
The registry holds the uncalibrated typical values; a calibration (``ketadur calibrate``) replaces
some of them, and some CVs, with values fitted to published trials. This module holds one such set
of replacements and loads the calibrated set shipped with the package, which every population
simulation uses unless told otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType

from ketadur.errors import KetadurInputError
from ketadur.model.parameters import REGISTRY

CALIBRATION_RESOURCE = "calibration.json"
"""File name of the shipped calibration in the ``ketadur.evidence`` package."""

MAX_CV = 2.0
"""Largest inter-individual coefficient of variation accepted (log-normal)."""

ODDS_IIV = frozenset({"madrs_refractory_fraction"})
"""Fractions below 1 whose odds ``p / (1 - p)`` vary log-normally between patients (a
logit-normal fraction); their CV is that of the odds. For a small fraction the odds are close to
the fraction itself, so a small CV means what it does for other parameters; a large one puts
patients near both ends of (0, 1) instead of piling a log-normal's upper tail onto the range's
upper bound. The refractory fraction is one: about 30-40 % of treatment-resistant patients do
not respond to six infusions (Murrough 2013, Phillips 2019) while responders remit."""

MAX_ODDS_CV = 100.0
"""Largest CV accepted for the odds of an :data:`ODDS_IIV` fraction (a logit-scale SD of 3.0)."""

PRESET_VALUES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"life_event_mean_points": (0.5, 30.0)}
)
"""Preset fields a calibration may set, with their accepted range. Only those whose change
keeps every patient's random draws (common random numbers): a life event's size is its
exponential draw times the mean, so a larger mean makes the same events larger; the events'
rate would change how many draws each patient takes, and so every later draw."""


@dataclass(frozen=True)
class PopulationParameters:
    """Typical values (registry units) and IIV CVs that replace the registry defaults and a
    preset's CVs, and preset fields (:data:`PRESET_VALUES`) that replace the preset's; what is
    not named keeps its value. ``label`` says where the values come from."""

    typical: Mapping[str, float] = field(default_factory=dict)
    cv: Mapping[str, float] = field(default_factory=dict)
    label: str = "registry"
    preset: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.typical.items():
            if name not in REGISTRY:
                raise KetadurInputError(f"typical.{name}", "not a registry parameter")
            p = REGISTRY[name]
            if not p.lower <= value <= p.upper:
                raise KetadurInputError(
                    f"typical.{name}", f"must lie in [{p.lower}, {p.upper}] {p.unit}", value
                )
        for name, value in self.cv.items():
            if name not in REGISTRY:
                raise KetadurInputError(f"cv.{name}", "not a registry parameter")
            largest = MAX_ODDS_CV if name in ODDS_IIV else MAX_CV
            if not 0.0 < value <= largest:
                raise KetadurInputError(f"cv.{name}", f"must lie in (0, {largest}]", value)
        for name, value in self.preset.items():
            if name not in PRESET_VALUES:
                raise KetadurInputError(
                    f"preset.{name}", f"not a preset value a calibration sets {list(PRESET_VALUES)}"
                )
            lo, hi = PRESET_VALUES[name]
            if not lo <= value <= hi:
                raise KetadurInputError(f"preset.{name}", f"must lie in [{lo:g}, {hi:g}]", value)
        object.__setattr__(self, "typical", MappingProxyType(dict(self.typical)))
        object.__setattr__(self, "cv", MappingProxyType(dict(self.cv)))
        object.__setattr__(self, "preset", MappingProxyType(dict(self.preset)))

    @classmethod
    def registry(cls) -> PopulationParameters:
        """No replacements: the registry's typical values and the presets' CVs."""
        return cls()


@cache
def shipped_calibration() -> dict | None:
    """The calibration document shipped as package data, or ``None`` when there is none."""
    ref = resources.files("ketadur.evidence").joinpath(CALIBRATION_RESOURCE)
    if not ref.is_file():
        return None
    return json.loads(ref.read_text(encoding="utf-8"))


def calibrated(draw: int | None = None) -> PopulationParameters:
    """The shipped calibration's point estimate (``draw=None``) or its posterior draw ``draw``
    (taken modulo the number of draws); the registry values when nothing is shipped."""
    doc = shipped_calibration()
    if doc is None:
        return PopulationParameters.registry()
    return from_document(doc, draw)


def from_document(doc: Mapping, draw: int | None = None) -> PopulationParameters:
    """Population parameters from a calibration document (see ``docs/calibration.md``)."""
    if draw is None:
        values, label = doc["point"], f"calibrated {doc['version']} (point)"
    else:
        draws = doc["draws"]
        k = draw % len(draws)
        values, label = draws[k], f"calibrated {doc['version']} (draw {k})"
    return from_values(values, label)


def from_values(values: Mapping[str, float], label: str) -> PopulationParameters:
    """Population parameters from ``{name: typical value}``, ``{"cv:name": CV}`` and
    ``{"preset:field": value}`` entries."""
    prefixed = {"cv": {}, "preset": {}}
    typical = {}
    for key, value in values.items():
        kind, _, name = key.partition(":")
        if name and kind in prefixed:
            prefixed[kind][name] = value
        else:
            typical[key] = value
    return PopulationParameters(typical=typical, label=label, **prefixed)


def draw_count() -> int:
    """Number of posterior draws shipped (0 when no calibration is shipped)."""
    doc = shipped_calibration()
    return 0 if doc is None else len(doc["draws"])
