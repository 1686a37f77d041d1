"""Synthetic NCT05906329 data: deterministic cohorts for tests, demos and benchmarks."""

from abscopal.synth.cohort import Cohort, SyntheticTruth, generate_cohort, iter_cohort_chunks

__all__ = ["Cohort", "SyntheticTruth", "generate_cohort", "iter_cohort_chunks"]
