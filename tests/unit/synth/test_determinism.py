"""The generator is a pure function of (n, seed, protocol, dates), whatever the chunking."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscopal.errors import ValidationError
from abscopal.protocol.model import Protocol
from abscopal.synth import Cohort, generate_cohort, iter_cohort_chunks


def test_the_same_seed_gives_an_identical_cohort(protocol: Protocol) -> None:
    assert generate_cohort(40, 5, protocol) == generate_cohort(40, 5, protocol)


def test_a_different_seed_gives_different_patients(protocol: Protocol) -> None:
    a, b = generate_cohort(40, 5, protocol), generate_cohort(40, 6, protocol)
    assert a.patients != b.patients
    assert a.tumour_assessments != b.tumour_assessments


@pytest.mark.parametrize("chunk_size", [1, 7, 39, 40, 1000])
def test_the_chunk_size_does_not_change_the_data(protocol: Protocol, chunk_size: int) -> None:
    whole = generate_cohort(40, 11, protocol)
    assert Cohort.concat(iter_cohort_chunks(40, 11, protocol, chunk_size=chunk_size)) == whole


def test_chunks_hold_at_most_chunk_size_patients_and_staff_only_once(protocol: Protocol) -> None:
    chunks = list(iter_cohort_chunks(25, 3, protocol, chunk_size=10))
    assert [len(c.patients) for c in chunks] == [10, 10, 5]
    assert [len(c.users) > 0 for c in chunks] == [True, False, False]
    assert [len(c.sites) for c in chunks] == [1, 0, 0]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), chunk=st.integers(min_value=1, max_value=9))
def test_streaming_equals_generating_for_any_seed_and_chunk(protocol: Protocol, seed: int, chunk: int) -> None:
    assert Cohort.concat(iter_cohort_chunks(9, seed, protocol, chunk_size=chunk)) == generate_cohort(9, seed, protocol)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_patients": -1}, "n_patients"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"seed": -3}, "seed"),
        ({"cutoff_date": dt.date(2023, 1, 30)}, "cutoff_date"),
    ],
)
def test_bad_arguments_are_refused_with_the_field_named(
    protocol: Protocol, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"n_patients": 5, "seed": 1, "protocol": protocol, "chunk_size": 2}
    args.update(kwargs)
    with pytest.raises(ValidationError) as error:
        list(iter_cohort_chunks(**args))  # type: ignore[arg-type]
    assert error.value.field == field


def test_an_empty_cohort_still_lists_the_site_and_staff(protocol: Protocol) -> None:
    empty = generate_cohort(0, 1, protocol)
    assert empty.patients == ()
    assert len(empty.users) > 0


def test_generation_leaves_the_garbage_collector_as_it_found_it(protocol: Protocol) -> None:
    import gc

    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            for _ in iter_cohort_chunks(3, 1, protocol, chunk_size=2):
                assert gc.isenabled() is state  # the pause never leaks into the caller's code
            assert gc.isenabled() is state
    finally:
        (gc.enable if was else gc.disable)()


def test_the_cohort_does_not_depend_on_the_interpreter_hash_seed() -> None:
    import os
    import subprocess
    import sys

    script = (
        "import hashlib; from abscopal.protocol.model import load_bundled; from abscopal.synth import generate_cohort;"
        "print(hashlib.sha256(repr(generate_cohort(60, 42, load_bundled().current)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (1, 2)
    }
    assert len(digests) == 1
