"""maternal case management: pregnancy files, assessments, follow-ups, reports, alerts

Revision ID: 0301
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0301"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("maternal",)
depends_on: str | Sequence[str] | None = "0101"


def upgrade() -> None:
    """Create the maternal case-management tables (the woman is a resident, revision 0101)."""
    op.create_table('maternal_pregnancies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('registered_by', sa.String(length=64), nullable=False),
    sa.Column('registered_facility_id', sa.Integer(), nullable=True),
    sa.Column('lmp', sa.Date(), nullable=True),
    sa.Column('edd', sa.Date(), nullable=False),
    sa.Column('gravidity', sa.Integer(), nullable=False),
    sa.Column('parity', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('colour', sa.String(length=16), nullable=False),
    sa.Column('purple', sa.Boolean(), nullable=False),
    sa.Column('high_risk', sa.Boolean(), nullable=False),
    sa.Column('screening_positive', sa.Boolean(), nullable=False),
    sa.Column('grading_due_on', sa.Date(), nullable=True),
    sa.Column('graded_on', sa.Date(), nullable=True),
    sa.Column('case_opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('case_manager_user_id', sa.Integer(), nullable=True),
    sa.Column('case_manager_assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_facility_id', sa.Integer(), nullable=True),
    sa.Column('delivery_booked_on', sa.Date(), nullable=True),
    sa.Column('tertiary_assessed_on', sa.Date(), nullable=True),
    sa.Column('tertiary_facility_id', sa.Integer(), nullable=True),
    sa.Column('continue_pregnancy', sa.Boolean(), nullable=True),
    sa.Column('plan_centre_facility_id', sa.Integer(), nullable=True),
    sa.Column('plan_agreed_on', sa.Date(), nullable=True),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.Column('pmtct', sa.JSON(), nullable=False),
    sa.Column('delivered_on', sa.Date(), nullable=True),
    sa.Column('delivery', sa.JSON(), nullable=True),
    sa.Column('postpartum_on', sa.Date(), nullable=True),
    sa.Column('postpartum_stable', sa.Boolean(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('screened', 'awaiting_grading', 'graded', 'delivered', 'closed')", name=op.f('ck_maternal_pregnancies_status_known')),
    sa.CheckConstraint('gravidity >= 1 AND parity >= 0 AND parity < gravidity', name=op.f('ck_maternal_pregnancies_gravidity_parity')),
    sa.ForeignKeyConstraint(['case_manager_user_id'], ['users.id'], name=op.f('fk_maternal_pregnancies_case_manager_user_id_users')),
    sa.ForeignKeyConstraint(['delivery_facility_id'], ['facilities.id'], name=op.f('fk_maternal_pregnancies_delivery_facility_id_facilities')),
    sa.ForeignKeyConstraint(['plan_centre_facility_id'], ['facilities.id'], name=op.f('fk_maternal_pregnancies_plan_centre_facility_id_facilities')),
    sa.ForeignKeyConstraint(['registered_facility_id'], ['facilities.id'], name=op.f('fk_maternal_pregnancies_registered_facility_id_facilities')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_maternal_pregnancies_resident_id_residents')),
    sa.ForeignKeyConstraint(['tertiary_facility_id'], ['facilities.id'], name=op.f('fk_maternal_pregnancies_tertiary_facility_id_facilities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maternal_pregnancies'))
    )

    with op.batch_alter_table('maternal_pregnancies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_case_manager_user_id'), ['case_manager_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_colour'), ['colour'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_edd'), ['edd'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_high_risk'), ['high_risk'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_pregnancies_village_code'), ['village_code'], unique=False)
        batch_op.create_index('uq_maternal_pregnancies_open_resident', ['resident_id'], unique=True, sqlite_where=sa.text("status <> 'closed'"), postgresql_where=sa.text("status <> 'closed'"))

    op.create_table('maternal_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pregnancy_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('colour', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=False),
    sa.Column('acknowledge_note', sa.Text(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('level >= 0', name=op.f('ck_maternal_alerts_level_nonneg')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['maternal_pregnancies.id'], name=op.f('fk_maternal_alerts_pregnancy_id_maternal_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maternal_alerts')),
    sa.UniqueConstraint('pregnancy_id', 'kind', 'key', name=op.f('uq_maternal_alerts_pregnancy_id_kind_key'))
    )

    with op.batch_alter_table('maternal_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maternal_alerts_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_alerts_pregnancy_id'), ['pregnancy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_alerts_raised_at'), ['raised_at'], unique=False)

    op.create_table('maternal_assessments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pregnancy_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=True),
    sa.Column('gestational_days', sa.Integer(), nullable=True),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('colour', sa.String(length=16), nullable=False),
    sa.Column('purple', sa.Boolean(), nullable=False),
    sa.Column('previous_colour', sa.String(length=16), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('management', sa.JSON(), nullable=False),
    sa.Column('table_family', sa.String(length=48), nullable=False),
    sa.Column('table_version', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('screening', 'grading', 'postpartum')", name=op.f('ck_maternal_assessments_kind_known')),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], name=op.f('fk_maternal_assessments_facility_id_facilities')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['maternal_pregnancies.id'], name=op.f('fk_maternal_assessments_pregnancy_id_maternal_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maternal_assessments'))
    )

    with op.batch_alter_table('maternal_assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maternal_assessments_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('maternal_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pregnancy_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['maternal_pregnancies.id'], name=op.f('fk_maternal_events_pregnancy_id_maternal_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maternal_events'))
    )

    with op.batch_alter_table('maternal_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maternal_events_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('maternal_follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pregnancy_id', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('planned_by', sa.String(length=64), nullable=False),
    sa.Column('done_on', sa.Date(), nullable=True),
    sa.Column('done_by', sa.String(length=64), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('antenatal', 'postpartum', 'phone')", name=op.f('ck_maternal_follow_ups_kind_known')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['maternal_pregnancies.id'], name=op.f('fk_maternal_follow_ups_pregnancy_id_maternal_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maternal_follow_ups'))
    )

    with op.batch_alter_table('maternal_follow_ups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maternal_follow_ups_due_on'), ['due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_follow_ups_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('maternal_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pregnancy_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=24), nullable=False),
    sa.Column('colour', sa.String(length=16), nullable=False),
    sa.Column('purple', sa.Boolean(), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reported_by', sa.String(length=64), nullable=False),
    sa.Column('recipient_facility_id', sa.Integer(), nullable=True),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("event IN ('case_opened', 'colour_changed', 'delivered', 'closed')", name=op.f('ck_maternal_reports_event_known')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['maternal_pregnancies.id'], name=op.f('fk_maternal_reports_pregnancy_id_maternal_pregnancies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_facility_id'], ['facilities.id'], name=op.f('fk_maternal_reports_recipient_facility_id_facilities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maternal_reports'))
    )

    with op.batch_alter_table('maternal_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maternal_reports_pregnancy_id'), ['pregnancy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_maternal_reports_reported_at'), ['reported_at'], unique=False)


def downgrade() -> None:
    """Drop this branch's tables."""
    with op.batch_alter_table('maternal_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maternal_reports_reported_at'))
        batch_op.drop_index(batch_op.f('ix_maternal_reports_pregnancy_id'))

    op.drop_table('maternal_reports')

    with op.batch_alter_table('maternal_follow_ups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maternal_follow_ups_pregnancy_id'))
        batch_op.drop_index(batch_op.f('ix_maternal_follow_ups_due_on'))

    op.drop_table('maternal_follow_ups')

    with op.batch_alter_table('maternal_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maternal_events_pregnancy_id'))

    op.drop_table('maternal_events')

    with op.batch_alter_table('maternal_assessments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maternal_assessments_pregnancy_id'))

    op.drop_table('maternal_assessments')

    with op.batch_alter_table('maternal_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maternal_alerts_raised_at'))
        batch_op.drop_index(batch_op.f('ix_maternal_alerts_pregnancy_id'))
        batch_op.drop_index(batch_op.f('ix_maternal_alerts_kind'))

    op.drop_table('maternal_alerts')

    with op.batch_alter_table('maternal_pregnancies', schema=None) as batch_op:
        batch_op.drop_index('uq_maternal_pregnancies_open_resident', sqlite_where=sa.text("status <> 'closed'"), postgresql_where=sa.text("status <> 'closed'"))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_village_code'))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_status'))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_resident_id'))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_high_risk'))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_edd'))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_colour'))
        batch_op.drop_index(batch_op.f('ix_maternal_pregnancies_case_manager_user_id'))

    op.drop_table('maternal_pregnancies')
