"""The patient's path (web.md §4): screening, adjudication, enrolment; each refusal names its reasons."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from abscopal import domain as d
from abscopal.errors import NotFound, PermissionDenied, ValidationError
from abscopal.services import adjudication, enrolment, screening
from abscopal.services.common import Refused


def _adjudicated(trial: Any, signers: int = 2) -> str:
    proposed = trial.act(trial.INVESTIGATOR, adjudication.propose_adjudication, "S-001", d.ResistanceType.PRIMARY)
    version = proposed.version
    for dcp in (trial.DCP1, trial.DCP2)[:signers]:
        version = trial.act(dcp, adjudication.sign_adjudication, proposed.id, version=version).version
    return str(proposed.id)


def _patient(trial: Any) -> Any:
    found = trial.read().patients.find(subject_id="S-001")
    assert found is not None
    return found


def test_recording_a_screening_returns_its_checklist_with_resistance_unknown(trial: Any) -> None:
    result = trial.act(trial.COORDINATOR, screening.record_screening, trial.screening())
    assert result.screening.version == 1
    assert result.checklist.unknown == ["IN10"]  # resistance: read from the adjudication, none yet


def test_an_impossible_screening_value_is_refused_naming_the_field(trial: Any) -> None:
    bad = trial.screening(labs={"haemoglobin": d.LabValue(-5, "g/L")})
    with pytest.raises(ValidationError, match="haemoglobin"):
        trial.act(trial.COORDINATOR, screening.record_screening, bad)
    assert trial.read().screenings.all() == []


def test_enrolment_is_refused_while_a_criterion_is_unknown(trial: Any) -> None:
    trial.act(trial.COORDINATOR, screening.record_screening, trial.screening(ecog=None))
    _adjudicated(trial)
    with pytest.raises(Refused) as refused:
        trial.act(trial.INVESTIGATOR, enrolment.enrol, "S-001", version=1, on=dt.date(2024, 3, 4))
    assert any("ECOG" in r or "ecog" in r for r in refused.value.reasons), refused.value.reasons
    assert _patient(trial).value.status is d.PatientStatus.SCREENING


def test_enrolment_is_refused_while_a_criterion_is_not_met(trial: Any) -> None:
    trial.act(trial.COORDINATOR, screening.record_screening, trial.screening(brain_metastases=True))
    _adjudicated(trial)
    with pytest.raises(Refused, match="exclusion"):
        trial.act(trial.INVESTIGATOR, enrolment.enrol, "S-001", version=1, on=dt.date(2024, 3, 4))


def test_enrolment_is_refused_while_the_adjudication_has_one_signature(trial: Any) -> None:
    trial.act(trial.COORDINATOR, screening.record_screening, trial.screening())
    _adjudicated(trial, signers=1)
    with pytest.raises(Refused, match="1 of the 2 signatures"):
        trial.act(trial.INVESTIGATOR, enrolment.enrol, "S-001", version=1, on=dt.date(2024, 3, 4))


def test_enrolment_with_every_criterion_met_and_two_signatures_records_the_protocol_version_of_the_day(
    trial: Any,
) -> None:
    trial.act(trial.COORDINATOR, screening.record_screening, trial.screening())
    _adjudicated(trial)
    on = dt.date(2024, 3, 4)
    stored = trial.act(trial.INVESTIGATOR, enrolment.enrol, "S-001", version=1, on=on)
    from abscopal.protocol.model import load_bundled

    assert stored.value.status is d.PatientStatus.ENROLLED
    assert stored.value.enrolment_date == on
    assert stored.value.protocol_version == load_bundled().version_on(on).version.number
    assert stored.version == 2


def test_a_coordinator_cannot_enrol(trial: Any) -> None:
    with pytest.raises(PermissionDenied, match="eligibility decision, enrol"):
        trial.act(trial.COORDINATOR, enrolment.enrol, "S-001", version=1, on=dt.date(2024, 3, 4))


def test_the_proposer_cannot_sign_the_adjudication(trial: Any) -> None:
    proposed = trial.act(trial.INVESTIGATOR, adjudication.propose_adjudication, "S-001", d.ResistanceType.PRIMARY)
    same_person_as_dcp = dataclasses.replace(trial.DCP1, username=trial.INVESTIGATOR.username)
    with pytest.raises(PermissionDenied, match="proposed this adjudication"):
        trial.act(same_person_as_dcp, adjudication.sign_adjudication, proposed.id, version=proposed.version)


def test_the_same_dcp_cannot_sign_twice(trial: Any) -> None:
    proposed = trial.act(trial.INVESTIGATOR, adjudication.propose_adjudication, "S-001", d.ResistanceType.PRIMARY)
    once = trial.act(trial.DCP1, adjudication.sign_adjudication, proposed.id, version=proposed.version)
    with pytest.raises(PermissionDenied, match="already signed"):
        trial.act(trial.DCP1, adjudication.sign_adjudication, proposed.id, version=once.version)
    assert len(trial.read().adjudications.get(proposed.id).value.signatures) == 1


def test_only_a_deputy_chief_physician_signs_the_adjudication(trial: Any) -> None:
    proposed = trial.act(trial.INVESTIGATOR, adjudication.propose_adjudication, "S-001", d.ResistanceType.PRIMARY)
    with pytest.raises(PermissionDenied, match="sign adjudication"):
        trial.act(trial.RADONC, adjudication.sign_adjudication, proposed.id, version=proposed.version)


def test_a_signature_based_on_a_stale_adjudication_is_a_conflict(trial: Any) -> None:
    from abscopal.errors import ConflictError

    proposed = trial.act(trial.INVESTIGATOR, adjudication.propose_adjudication, "S-001", d.ResistanceType.PRIMARY)
    trial.act(trial.DCP1, adjudication.sign_adjudication, proposed.id, version=proposed.version)
    with pytest.raises(ConflictError):
        trial.act(trial.DCP2, adjudication.sign_adjudication, proposed.id, version=proposed.version)


def test_another_sites_patient_is_not_found(trial: Any) -> None:
    elsewhere = dataclasses.replace(trial.COORDINATOR, sites=frozenset({"QD"}))
    with pytest.raises(NotFound):
        trial.act(elsewhere, screening.record_screening, trial.screening())


def test_a_unit_of_work_opened_for_another_user_is_refused(trial: Any) -> None:
    with trial.store.as_user("someone.else") as uow, pytest.raises(PermissionDenied, match="audit trail"):
        screening.record_screening(uow, trial.COORDINATOR, trial.screening(), at=trial.AT)


def test_a_refused_use_case_commits_nothing(trial: Any) -> None:
    with trial.store.as_user(trial.INVESTIGATOR.username) as uow:
        with pytest.raises(Refused):
            enrolment.enrol(uow, trial.INVESTIGATOR, "S-001", version=1, on=dt.date(2024, 3, 4))
        assert not uow.committed


# "Today" is the patient's site's day (services.common.site_today): at 16:30 UTC it is already the next day in
# Jinan (UTC+8), and a screening dated that day by the page must not be refused as "in the future".
LATE_UTC = dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 on 2 December in Asia/Shanghai
NEXT_DAY = dt.date(2026, 12, 2)


def _site_zone(trial: Any, zone: str | None) -> None:
    with trial.store as uow:
        site = uow.sites.find(code="JN")
        uow.sites.update(site.id, dataclasses.replace(site.value, time_zone=zone), version=site.version)
        uow.commit()


def _screened_on(trial: Any, day: dt.date) -> Any:
    screening_of_day = trial.screening(screening_date=day, consent_date=day, age_years=57)
    return trial.act(trial.COORDINATOR, screening.record_screening, screening_of_day, at=LATE_UTC)


def test_a_screening_dated_today_at_a_site_ahead_of_utc_is_accepted_after_utc_evening(trial: Any) -> None:
    _site_zone(trial, "Asia/Shanghai")
    assert _screened_on(trial, NEXT_DAY).screening.value.screening_date == NEXT_DAY


def test_a_site_without_a_time_zone_takes_the_trials_default_zone_for_today(trial: Any) -> None:
    _site_zone(trial, None)  # the trial's default, Asia/Shanghai (domain.DEFAULT_TIME_ZONE), as the pages show it
    assert _screened_on(trial, NEXT_DAY).screening.version == 1


def test_a_screening_dated_after_the_sites_today_is_refused_as_in_the_future(trial: Any) -> None:
    _site_zone(trial, "UTC")  # still 1 December there
    with pytest.raises(ValidationError, match=r"screening_date: 2026-12-02 is in the future \(today is 2026-12-01\)"):
        _screened_on(trial, NEXT_DAY)
    assert trial.read().screenings.all() == []
