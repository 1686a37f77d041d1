"""accounts, site roles, sessions, API tokens and login failures for the web application (web.md §6); site time zone

Security data, not trial data: the new tables hold accounts (Argon2id hashes), one role per site, server-side
sessions and personal API tokens (SHA-256 of their secrets only) and recent failed logins (lock-out). Sites gain
``time_zone`` (nullable: rows written before hold NULL, the trial's default zone, which the audit replay expects).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('sites', sa.Column('time_zone', sa.Text(), nullable=True))
    op.create_table('accounts',
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('full_name', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_accounts'))
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_username_at', 'login_failures', ['username', 'at'], unique=False)
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['username'], ['accounts.username'], name=op.f('fk_api_tokens_username_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index('ix_api_tokens_username', 'api_tokens', ['username'], unique=False)
    op.create_table('memberships',
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('site_code', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('pi', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['username'], ['accounts.username'], name=op.f('fk_memberships_username_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('username', 'site_code', name=op.f('pk_memberships'))
    )
    op.create_table('web_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_why', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['username'], ['accounts.username'], name=op.f('fk_web_sessions_username_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sessions'))
    )
    op.create_index('ix_web_sessions_username', 'web_sessions', ['username'], unique=False)


def downgrade() -> None:
    for name in ("web_sessions", "memberships", "api_tokens", "login_failures", "accounts"):
        op.drop_table(name)
    op.execute('ALTER TABLE "sites" DROP COLUMN "time_zone"')
