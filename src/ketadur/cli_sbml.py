"""``ketadur export-sbml``: the model under a fixed protocol arm as SBML (or Antimony text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ketadur.cli_common import (
    DISCLAIMER,
    check_suffix,
    check_writable_folder,
    console,
    write_text_atomic,
)
from ketadur.errors import KetadurInputError

SBML_SUFFIXES = (".xml", ".sbml")
ANTIMONY_SUFFIXES = (".ant", ".txt")


def _patient(population: Path | None, subject: str | None):
    from ketadur.model.patient import TYPICAL_PATIENT
    from ketadur.population.table import patient_of, read_population

    if population is None:
        if subject is not None:
            raise KetadurInputError("--subject", "needs --population (the table to read it from)")
        return TYPICAL_PATIENT
    table = read_population(population)
    if subject is None:
        if len(table) != 1:
            raise KetadurInputError(
                "--subject", f"the population has {len(table)} patients: name one"
            )
        return patient_of(table.iloc[0])
    rows = table[table["subject_id"].astype(str) == subject]
    if rows.empty:
        raise KetadurInputError("--subject", "no such subject_id in the population", subject)
    return patient_of(rows.iloc[0])


def export_sbml_cmd(
    protocol_name: str,
    arm: str | None,
    population: Path | None,
    subject: str | None,
    out: Path,
    antimony: bool,
) -> None:
    """Write the SBML (or Antimony) of ``protocol_name``'s arm for one patient to ``out``."""
    from ketadur.engine.sbml import antimony_text, protocol_sbml
    from ketadur.protocols.io import load_protocol

    check_suffix(out, ANTIMONY_SUFFIXES if antimony else SBML_SUFFIXES, "--out")
    check_writable_folder(out, "--out")
    protocol = load_protocol(protocol_name)
    patient = _patient(population, subject)
    text = protocol_sbml(protocol, arm, patient)
    if antimony:
        text = antimony_text(text)
    write_text_atomic(out, text)
    kind = "Antimony" if antimony else "SBML Level 3 Version 2"
    console.print(
        f"{kind} of {protocol.name}/{protocol.arm(arm).name} for patient {patient.subject_id} "
        f"written to {out}"
    )
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def register(app: typer.Typer) -> None:
    """Add ``ketadur export-sbml`` to ``app``."""

    @app.command("export-sbml")
    def export_sbml(
        protocol: Annotated[
            str, typer.Option(help="Library protocol name or YAML file (a fixed arm).")
        ],
        out: Annotated[Path, typer.Option(help="Output .xml/.sbml (.ant/.txt with --antimony).")],
        arm: Annotated[str | None, typer.Option(help="Arm name (default: the first).")] = None,
        population: Annotated[
            Path | None,
            typer.Option(help="Population table (.parquet/.csv) holding the patient to export."),
        ] = None,
        subject: Annotated[
            str | None, typer.Option(help="subject_id of the patient in --population.")
        ] = None,
        antimony: Annotated[
            bool, typer.Option("--antimony", help="Write Antimony text instead of SBML.")
        ] = False,
    ) -> None:
        """Export the model with a fixed protocol arm as SBML Level 3 (libRoadRunner, COPASI).

        Parameter ids are the registry's names plus the patient covariates (weight_kg, ...);
        doses, sessions and lifestyle changes are events; time is in hours."""
        export_sbml_cmd(protocol, arm, population, subject, out, antimony)
