"""The derivation options the analysis used, as rows the report prints with their meaning and source (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from abscopal.protocol.model import Protocol, ResponseOptions


@dataclass(frozen=True)
class OptionRow:
    """One option the derivation used, with its value and where the rule is defined."""

    name: str
    value: str
    meaning: str


RESPONSE_OPTION_MEANING: dict[str, str] = {
    "criteria": "criteria of the primary analysis (response-rules.md §5)",
    "sd_min_days": "AMBIGUOUS: minimum days from the reference date for SD to count in the BOR (§4)",
    "dcr_sd_min_days": "AMBIGUOUS: minimum duration of SD for disease control (§4)",
    "confirm_min_days": "AMBIGUOUS: minimum days between a response and its confirmation (§4)",
    "max_ne_between": "AMBIGUOUS: NE assessments allowed between a response and its confirmation (§4)",
    "accept_sd_between": "AMBIGUOUS: SD allowed between a response and its confirmation (§4)",
    "missed_visits": "AMBIGUOUS: progression after >= 2 missed assessments is censored or an event (§6)",
    "unconfirmed_iupd": "AMBIGUOUS: a last unconfirmed iUPD is a PFS event or censored (§6)",
    "icpd_window_days": "AMBIGUOUS: window after iUPD for the confirming scan (§5)",
    "enforce_icpd_window": "AMBIGUOUS: refuse confirmations outside the window, or only flag them (§5)",
    "too_small_to_measure_mm": "value entered for a lesion too small to measure (§2)",
    "missed_visits_gap_days": "AMBIGUOUS: gap that counts as >= 2 missed assessments (§6)",
    "new_lesion_reset": "AMBIGUOUS: when new lesions stop blocking an iRECIST reset (§5)",
    "orr_requires_confirmation": "AMBIGUOUS: ORR counts confirmed responses only (§4)",
    "role_confirmation": "AMBIGUOUS: best response per RT role must be confirmed (§8)",
}


def option_rows(options: ResponseOptions) -> tuple[OptionRow, ...]:
    """Every response option the derivation used (all AMBIGUOUS rules of response-rules.md), in model order."""
    rows = []
    for name, value in options.model_dump().items():
        if isinstance(value, dict) and set(value) == {"min", "max"}:
            shown = f"{value['min']:g}-{value['max']:g}"
        else:
            shown = str(value)
        rows.append(OptionRow(name, shown, RESPONSE_OPTION_MEANING.get(name, "response-rules.md")))
    return tuple(rows)


def safety_qol_option_rows(protocol: Protocol) -> tuple[OptionRow, ...]:
    """The safety and QoL options behind the safety tables and the time to deterioration (ae-qol.md A4, B6)."""
    safety = protocol.safety
    rows = [
        OptionRow("safety.teae_anchor", safety.teae_anchor, "start of treatment emergence (ae-qol.md A4)"),
        OptionRow("safety.teae_window_days", str(safety.teae_window_days), "TEAE window after the last dose"),
        OptionRow(
            "safety.teae_window_days_sae_irae",
            str(safety.teae_window_days_sae_irae),
            "TEAE window for serious and immune-related events",
        ),
        OptionRow(
            "safety.missing_attribution",
            safety.missing_attribution,
            "a missing attribution counts as related or unrelated (queried either way)",
        ),
    ]
    for name, value in protocol.qol.model_dump().items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        rows.append(OptionRow(f"qol.{name}", shown, "time to deterioration definition (SISAQOL; docs/qol.md)"))
    return tuple(rows)
