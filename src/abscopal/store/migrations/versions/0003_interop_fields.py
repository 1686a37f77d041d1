"""fields the interoperability mapping needs (interop.md §9 G1-G8)

Patient hospital id, race, ethnicity and withdrawal reason (G1); immunotherapy dose, unit and route (G2);
imaging method, the investigator's criteria, a measurement's not-done reason and "too small" (G3); lesion
laterality (G4); AE action with the radiotherapy (G6); questionnaire instrument version and not-done reason (G7);
the RT plan's UID, fraction group and dose reference, and a fraction's record UID and meterset ratio (G8). All
nullable: rows written before hold NULL, which the audit trail's replay also expects.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ADDED = [('adverse_events', 'action_rt'), ('fractions', 'record_uid'), ('fractions', 'meterset_ratio'), ('immunotherapy_cycles', 'dose'), ('immunotherapy_cycles', 'dose_unit'), ('immunotherapy_cycles', 'route'), ('lesion_measurements', 'not_done_reason'), ('lesion_measurements', 'too_small'), ('lesions', 'laterality'), ('patients', 'hospital_id'), ('patients', 'race'), ('patients', 'ethnicity'), ('patients', 'withdrawal_reason'), ('questionnaire_answers', 'instrument_version'), ('questionnaire_answers', 'not_done_reason'), ('radiotherapy_courses', 'plan_uid'), ('radiotherapy_courses', 'fraction_group'), ('radiotherapy_courses', 'dose_reference'), ('tumour_assessments', 'method'), ('tumour_assessments', 'criteria')]


def upgrade() -> None:
    op.add_column('adverse_events', sa.Column('action_rt', sa.String(length=40), nullable=True))
    op.add_column('fractions', sa.Column('record_uid', sa.Text(), nullable=True))
    op.add_column('fractions', sa.Column('meterset_ratio', sa.Float(), nullable=True))
    op.add_column('immunotherapy_cycles', sa.Column('dose', sa.Float(), nullable=True))
    op.add_column('immunotherapy_cycles', sa.Column('dose_unit', sa.Text(), nullable=True))
    op.add_column('immunotherapy_cycles', sa.Column('route', sa.Text(), nullable=True))
    op.add_column('lesion_measurements', sa.Column('not_done_reason', sa.Text(), nullable=True))
    op.add_column('lesion_measurements', sa.Column('too_small', sa.Boolean(), nullable=True))
    op.add_column('lesions', sa.Column('laterality', sa.Text(), nullable=True))
    op.add_column('patients', sa.Column('hospital_id', sa.Text(), nullable=True))
    op.add_column('patients', sa.Column('race', sa.Text(), nullable=True))
    op.add_column('patients', sa.Column('ethnicity', sa.Text(), nullable=True))
    op.add_column('patients', sa.Column('withdrawal_reason', sa.Text(), nullable=True))
    op.add_column('questionnaire_answers', sa.Column('instrument_version', sa.Text(), nullable=True))
    op.add_column('questionnaire_answers', sa.Column('not_done_reason', sa.Text(), nullable=True))
    op.add_column('radiotherapy_courses', sa.Column('plan_uid', sa.Text(), nullable=True))
    op.add_column('radiotherapy_courses', sa.Column('fraction_group', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
    op.add_column('radiotherapy_courses', sa.Column('dose_reference', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
    op.add_column('tumour_assessments', sa.Column('method', sa.Text(), nullable=True))
    op.add_column('tumour_assessments', sa.Column('criteria', sa.Text(), nullable=True))


def downgrade() -> None:
    for table, column in reversed(ADDED):  # native DROP COLUMN (SQLite >= 3.35, PostgreSQL): no table rebuild
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
