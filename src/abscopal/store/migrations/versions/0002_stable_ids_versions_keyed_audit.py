"""stable identities and versions, logical removal, data-management tables, the keyed audit trail

Every trial-data table gets a surrogate ``id`` (the 0001 key, so old audit records still name their rows), a
``version`` (1) and ``removed_reason`` (NULL); natural keys become unique indexes; child rows point at their
parent's id. The audit trail gains the record version and a bulk record's id range, its head gains the MAC that
anchors the plain SHA-256 chain of 0001 under the new HMAC key, and triggers make it append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from abscopal.store.migration_support import (
    copy_back,
    create_append_only_triggers,
    drop_append_only_triggers,
    fill_bulk_ranges,
    recreate_0001_schema,
    refuse_downgrade_with_data,
    save_legacy_tables,
    seal_head,
)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = ['sites', 'patients', 'users', 'adjudications', 'adverse_events', 'data_queries', 'fractions', 'immunotherapy_cycles', 'immunotherapy_histories', 'lesions', 'protocol_deviations', 'questionnaire_answers', 'radiotherapy_courses', 'record_locks', 'record_signatures', 'screenings', 'sdv_marks', 'tumour_assessments', 'adjudication_signatures', 'lesion_measurements']


def _create_trial_tables() -> None:
    op.create_table('sites',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('country', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index('uq_sites_natural_key', ['code'], unique=True)

    op.create_table('patients',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.String(length=100), nullable=False),
    sa.Column('site_code', sa.Text(), nullable=False),
    sa.Column('sex', sa.String(length=40), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('protocol_version', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('enrolment_date', sa.Date(), nullable=True),
    sa.Column('death_date', sa.Date(), nullable=True),
    sa.Column('death_cause', sa.Text(), nullable=True),
    sa.Column('withdrawal_date', sa.Date(), nullable=True),
    sa.Column('new_therapy_date', sa.Date(), nullable=True),
    sa.Column('last_contact_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['site_code'], ['sites.code'], name=op.f('fk_patients_site_code_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index('ix_patients_site_code', ['site_code'], unique=False)
        batch_op.create_index('ix_patients_status', ['status'], unique=False)
        batch_op.create_index('uq_patients_natural_key', ['subject_id'], unique=True)

    op.create_table('users',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('username', sa.Text(), nullable=False),
    sa.Column('full_name', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('site_code', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['site_code'], ['sites.code'], name=op.f('fk_users_site_code_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('uq_users_natural_key', ['username'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('adjudications',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('classification', sa.String(length=40), nullable=False),
    sa.Column('proposed_by', sa.Text(), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_adjudications_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjudications'))
    )
    with op.batch_alter_table('adjudications', schema=None) as batch_op:
        batch_op.create_index('ix_adjudications_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_adjudications_natural_key', ['subject_id', 'proposed_at'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('adverse_events',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('ae_id', sa.Text(), nullable=False),
    sa.Column('term', sa.Text(), nullable=False),
    sa.Column('meddra_code', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grade', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('onset_date', sa.Date(), nullable=False),
    sa.Column('resolution_date', sa.Date(), nullable=True),
    sa.Column('serious_death', sa.Boolean(), nullable=False),
    sa.Column('serious_life_threatening', sa.Boolean(), nullable=False),
    sa.Column('serious_hospitalisation', sa.Boolean(), nullable=False),
    sa.Column('serious_disability', sa.Boolean(), nullable=False),
    sa.Column('serious_congenital', sa.Boolean(), nullable=False),
    sa.Column('serious_medically_important', sa.Boolean(), nullable=False),
    sa.Column('attribution_cfrt', sa.String(length=40), nullable=True),
    sa.Column('attribution_ldrt', sa.String(length=40), nullable=True),
    sa.Column('attribution_io', sa.String(length=40), nullable=True),
    sa.Column('immune_related', sa.Boolean(), nullable=False),
    sa.Column('action_io', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('verbatim', sa.Text(), nullable=True),
    sa.Column('baseline_grade', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('awareness_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_adverse_events_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adverse_events'))
    )
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.create_index('ix_adverse_events_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_adverse_events_natural_key', ['subject_id', 'ae_id'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('data_queries',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('field', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('raised_by', sa.Text(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by', sa.Text(), nullable=True),
    sa.Column('record_id', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Text(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_data_queries_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_queries'))
    )
    with op.batch_alter_table('data_queries', schema=None) as batch_op:
        batch_op.create_index('ix_data_queries_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_data_queries_natural_key', ['subject_id', 'entity', 'field', 'raised_at'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('fractions',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('lesion_id', sa.Text(), nullable=False),
    sa.Column('fraction_number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('dose_gy', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_fractions_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fractions'))
    )
    with op.batch_alter_table('fractions', schema=None) as batch_op:
        batch_op.create_index('ix_fractions_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_fractions_natural_key', ['subject_id', 'lesion_id', 'fraction_number'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('immunotherapy_cycles',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('cycle_number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('agent', sa.Text(), nullable=False),
    sa.Column('given', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_immunotherapy_cycles_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_immunotherapy_cycles'))
    )
    with op.batch_alter_table('immunotherapy_cycles', schema=None) as batch_op:
        batch_op.create_index('ix_immunotherapy_cycles_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_immunotherapy_cycles_natural_key', ['subject_id', 'cycle_number'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('immunotherapy_histories',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('agent', sa.Text(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('last_dose_date', sa.Date(), nullable=True),
    sa.Column('best_response', sa.String(length=40), nullable=True),
    sa.Column('progression_date', sa.Date(), nullable=True),
    sa.Column('progression_confirmed_date', sa.Date(), nullable=True),
    sa.Column('lines_of_therapy', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('start_date_reported', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_immunotherapy_histories_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_immunotherapy_histories'))
    )
    with op.batch_alter_table('immunotherapy_histories', schema=None) as batch_op:
        batch_op.create_index('ix_immunotherapy_histories_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_immunotherapy_histories_natural_key', ['subject_id', 'agent', 'start_date'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('lesions',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('lesion_id', sa.Text(), nullable=False),
    sa.Column('organ', sa.Text(), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.Column('is_node', sa.Boolean(), nullable=False),
    sa.Column('measurable', sa.Boolean(), nullable=False),
    sa.Column('baseline_diameter_mm', sa.Float(), nullable=True),
    sa.Column('rt_role', sa.String(length=40), nullable=False),
    sa.Column('lesion_class', sa.String(length=40), nullable=False),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('is_symptomatic', sa.Boolean(), nullable=False),
    sa.Column('label', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_lesions_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesions'))
    )
    with op.batch_alter_table('lesions', schema=None) as batch_op:
        batch_op.create_index('ix_lesions_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_lesions_natural_key', ['subject_id', 'lesion_id'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('protocol_deviations',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('check', sa.String(length=40), nullable=False),
    sa.Column('deviation_class', sa.String(length=40), nullable=False),
    sa.Column('values', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('lesion_id', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.Text(), nullable=True),
    sa.Column('confirmed_by', sa.Text(), nullable=True),
    sa.Column('date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_protocol_deviations_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protocol_deviations'))
    )
    with op.batch_alter_table('protocol_deviations', schema=None) as batch_op:
        batch_op.create_index('ix_protocol_deviations_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_protocol_deviations_natural_key', ['subject_id', 'check', 'lesion_id', 'date'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('questionnaire_answers',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('visit', sa.Text(), nullable=False),
    sa.Column('instrument', sa.String(length=40), nullable=False),
    sa.Column('item', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('answer', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_questionnaire_answers_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaire_answers'))
    )
    with op.batch_alter_table('questionnaire_answers', schema=None) as batch_op:
        batch_op.create_index('ix_questionnaire_answers_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_questionnaire_answers_natural_key', ['subject_id', 'visit', 'instrument', 'item'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('radiotherapy_courses',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('lesion_id', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('dose_per_fraction_gy', sa.Float(), nullable=False),
    sa.Column('fractions', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('alpha_beta_gy', sa.Float(), nullable=False),
    sa.Column('plan_label', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_radiotherapy_courses_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radiotherapy_courses'))
    )
    with op.batch_alter_table('radiotherapy_courses', schema=None) as batch_op:
        batch_op.create_index('ix_radiotherapy_courses_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_radiotherapy_courses_natural_key', ['subject_id', 'lesion_id', 'start_date'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('record_locks',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('record_id', sa.Text(), nullable=False),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('locked_by', sa.Text(), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_record_locks_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_locks'))
    )
    with op.batch_alter_table('record_locks', schema=None) as batch_op:
        batch_op.create_index('ix_record_locks_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_record_locks_natural_key', ['entity', 'record_id'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('record_signatures',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('record_id', sa.Text(), nullable=False),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('username', sa.Text(), nullable=False),
    sa.Column('full_name', sa.Text(), nullable=False),
    sa.Column('meaning', sa.Text(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content_hash', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_record_signatures_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_signatures'))
    )
    with op.batch_alter_table('record_signatures', schema=None) as batch_op:
        batch_op.create_index('ix_record_signatures_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_record_signatures_natural_key', ['entity', 'record_id', 'username', 'meaning'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('screenings',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('screening_date', sa.Date(), nullable=False),
    sa.Column('consent_date', sa.Date(), nullable=True),
    sa.Column('age_years', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ecog', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('life_expectancy_months', sa.Float(), nullable=True),
    sa.Column('diet', sa.String(length=40), nullable=True),
    sa.Column('severe_allergy_history', sa.Boolean(), nullable=True),
    sa.Column('labs', sa.JSON(), nullable=False),
    sa.Column('histology', sa.String(length=40), nullable=True),
    sa.Column('histology_confirmed_by', sa.String(length=40), nullable=True),
    sa.Column('lesion_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('metastatic_organ_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('has_measurable_disease', sa.Boolean(), nullable=True),
    sa.Column('immunotherapy_resistance_confirmed', sa.Boolean(), nullable=True),
    sa.Column('no_standard_treatment_option', sa.Boolean(), nullable=True),
    sa.Column('refuses_cooperation', sa.Boolean(), nullable=True),
    sa.Column('other_trial_within_3_months', sa.Boolean(), nullable=True),
    sa.Column('brain_metastases', sa.Boolean(), nullable=True),
    sa.Column('investigator_judges_unsuitable', sa.Boolean(), nullable=True),
    sa.Column('severe_infection', sa.Boolean(), nullable=True),
    sa.Column('serious_comorbidity', sa.Boolean(), nullable=True),
    sa.Column('prior_immune_related_toxicity', sa.Boolean(), nullable=True),
    sa.Column('prior_radiotherapy', sa.Boolean(), nullable=True),
    sa.Column('screen_failure_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_screenings_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screenings'))
    )
    with op.batch_alter_table('screenings', schema=None) as batch_op:
        batch_op.create_index('uq_screenings_natural_key', ['subject_id'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('sdv_marks',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('record_id', sa.Text(), nullable=False),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('record_version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('verified_by', sa.Text(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_sdv_marks_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sdv_marks'))
    )
    with op.batch_alter_table('sdv_marks', schema=None) as batch_op:
        batch_op.create_index('ix_sdv_marks_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_sdv_marks_natural_key', ['entity', 'record_id'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('tumour_assessments',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('subject_id', sa.Text(), nullable=False),
    sa.Column('assessment_date', sa.Date(), nullable=False),
    sa.Column('investigator_response', sa.String(length=40), nullable=True),
    sa.Column('assessed_by', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['patients.subject_id'], name=op.f('fk_tumour_assessments_subject_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tumour_assessments'))
    )
    with op.batch_alter_table('tumour_assessments', schema=None) as batch_op:
        batch_op.create_index('ix_tumour_assessments_subject_id', ['subject_id'], unique=False)
        batch_op.create_index('uq_tumour_assessments_natural_key', ['subject_id', 'assessment_date'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('adjudication_signatures',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('adjudication_id', sa.String(length=200), nullable=False),
    sa.Column('username', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('meaning', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['adjudication_id'], ['adjudications.id'], name=op.f('fk_adjudication_signatures_adjudication_id_adjudications'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjudication_signatures'))
    )
    with op.batch_alter_table('adjudication_signatures', schema=None) as batch_op:
        batch_op.create_index('ix_adjudication_signatures_adjudication_id', ['adjudication_id'], unique=False)
        batch_op.create_index('uq_adjudication_signatures_natural_key', ['adjudication_id', 'username'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))

    op.create_table('lesion_measurements',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('assessment_id', sa.String(length=200), nullable=False),
    sa.Column('lesion_id', sa.Text(), nullable=False),
    sa.Column('lesion_class', sa.String(length=40), nullable=False),
    sa.Column('organ', sa.Text(), nullable=False),
    sa.Column('is_node', sa.Boolean(), nullable=False),
    sa.Column('diameter_mm', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=40), nullable=True),
    sa.Column('rt_role', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['assessment_id'], ['tumour_assessments.id'], name=op.f('fk_lesion_measurements_assessment_id_tumour_assessments'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesion_measurements'))
    )
    with op.batch_alter_table('lesion_measurements', schema=None) as batch_op:
        batch_op.create_index('ix_lesion_measurements_assessment_id', ['assessment_id'], unique=False)
        batch_op.create_index('uq_lesion_measurements_natural_key', ['assessment_id', 'lesion_id'], unique=True, sqlite_where=sa.text('removed_reason IS NULL'), postgresql_where=sa.text('removed_reason IS NULL'))


def upgrade() -> None:
    bind = op.get_bind()
    save_legacy_tables(bind)  # copies of the 0001 tables (no constraints), then the 0001 tables are dropped
    _create_trial_tables()
    copy_back(bind)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("key_first", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("key_last", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_audit_log_bulk_range", ["entity", "key_first"], unique=False)
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legacy_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    fill_bulk_ranges(bind)
    seal_head(bind)
    create_append_only_triggers(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if not context.config.attributes.get("discard_data"):  # `abscopal demo` replacing its own demo sets it
        refuse_downgrade_with_data(bind)
    drop_append_only_triggers(bind)
    for name in reversed(list(NEW_TABLES)):
        op.drop_table(name)
    op.drop_table("audit_log")
    op.drop_table("audit_head")
    recreate_0001_schema()  # the database was empty: the 0001 schema, empty, as 0001 made it
