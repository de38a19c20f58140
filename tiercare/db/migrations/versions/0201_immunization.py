"""immunization: children, records, uploads, sites, sessions, bookings, releases, stock

Revision ID: 0201
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0201"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("immunization",)
depends_on: str | Sequence[str] | None = "0101"


def upgrade() -> None:
    """Create the immunisation tables (children link to residents, revision 0101)."""
    op.create_table('imm_sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=True),
    sa.Column('division_prefix', sa.String(length=12), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('active_from', sa.Date(), nullable=True),
    sa.Column('active_until', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('fixed', 'temporary', 'mobile')", name=op.f('ck_imm_sites_kind_known')),
    sa.CheckConstraint('slot_minutes >= 0', name=op.f('ck_imm_sites_slot_minutes_positive')),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], name=op.f('fk_imm_sites_facility_id_facilities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_sites')),
    sa.UniqueConstraint('code', name=op.f('uq_imm_sites_code'))
    )
    op.create_index(op.f('ix_imm_sites_division_prefix'), 'imm_sites', ['division_prefix'], unique=False)
    op.create_index(op.f('ix_imm_sites_facility_id'), 'imm_sites', ['facility_id'], unique=False)
    op.create_table('imm_lots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('vaccine', sa.String(length=16), nullable=False),
    sa.Column('lot', sa.String(length=32), nullable=False),
    sa.Column('manufacturer', sa.String(length=64), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_lots_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_lots')),
    sa.UniqueConstraint('site_id', 'vaccine', 'lot', name=op.f('uq_imm_lots_site_id_vaccine_lot'))
    )
    op.create_index(op.f('ix_imm_lots_site_id'), 'imm_lots', ['site_id'], unique=False)
    op.create_table('imm_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('vaccine', sa.String(length=16), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('doses', sa.Integer(), nullable=False),
    sa.Column('opens_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.Column('offer_hours', sa.Integer(), nullable=False),
    sa.Column('eligibility', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('arrival', 'lottery')", name=op.f('ck_imm_releases_mode_known')),
    sa.CheckConstraint('taken >= 0 AND taken <= doses', name=op.f('ck_imm_releases_never_oversold')),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_releases_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_releases')),
    sa.UniqueConstraint('code', name=op.f('uq_imm_releases_code'))
    )
    op.create_table('imm_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('start', sa.String(length=5), nullable=False),
    sa.Column('end', sa.String(length=5), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=True),
    sa.Column('place', sa.String(length=128), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.CheckConstraint('booked >= 0 AND booked <= capacity', name=op.f('ck_imm_sessions_not_overbooked')),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_sessions_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_sessions')),
    sa.UniqueConstraint('site_id', 'on_date', 'start', name=op.f('uq_imm_sessions_site_id_on_date_start'))
    )
    op.create_index(op.f('ix_imm_sessions_on_date'), 'imm_sessions', ['on_date'], unique=False)
    op.create_index(op.f('ix_imm_sessions_site_id'), 'imm_sessions', ['site_id'], unique=False)
    op.create_table('imm_site_capacity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('vaccine', sa.String(length=16), nullable=False),
    sa.Column('daily_doses', sa.Integer(), nullable=False),
    sa.CheckConstraint('daily_doses >= 0', name=op.f('ck_imm_site_capacity_doses_positive')),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_site_capacity_site_id_imm_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_site_capacity')),
    sa.UniqueConstraint('site_id', 'vaccine', name=op.f('uq_imm_site_capacity_site_id_vaccine'))
    )
    op.create_table('imm_site_stops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('place', sa.String(length=128), nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('start', sa.String(length=5), nullable=False),
    sa.Column('end', sa.String(length=5), nullable=False),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_imm_site_stops_weekday_range')),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_site_stops_site_id_imm_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_site_stops')),
    sa.UniqueConstraint('site_id', 'weekday', name=op.f('uq_imm_site_stops_site_id_weekday'))
    )
    op.create_index(op.f('ix_imm_site_stops_site_id'), 'imm_site_stops', ['site_id'], unique=False)
    op.create_table('imm_upload_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('source_format', sa.String(length=8), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('already_present', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_upload_batches_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_upload_batches'))
    )
    op.create_index(op.f('ix_imm_upload_batches_content_sha256'), 'imm_upload_batches', ['content_sha256'], unique=False)
    op.create_table('imm_children',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('id_kind', sa.String(length=20), nullable=False),
    sa.Column('id_masked', sa.String(length=32), nullable=False),
    sa.Column('id_digest', sa.String(length=64), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('guardian_resident_id', sa.Integer(), nullable=True),
    sa.Column('guardian_name', sa.String(length=64), nullable=False),
    sa.Column('guardian_relation', sa.String(length=16), nullable=False),
    sa.Column('guardian_phone', sa.String(length=32), nullable=False),
    sa.Column('guardian_phone_digest', sa.String(length=64), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('registered_how', sa.String(length=8), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('mother_hbsag', sa.String(length=8), nullable=True),
    sa.Column('birth_weight_g', sa.Float(), nullable=True),
    sa.Column('tb_test_date', sa.Date(), nullable=True),
    sa.Column('tb_test_result', sa.String(length=8), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("id_kind IN ('resident_id', 'birth_certificate')", name=op.f('ck_imm_children_id_kind_known')),
    sa.CheckConstraint("registered_how IN ('birth', 'arrival')", name=op.f('ck_imm_children_how_known')),
    sa.CheckConstraint("sex IN ('M', 'F')", name=op.f('ck_imm_children_sex_known')),
    sa.ForeignKeyConstraint(['guardian_resident_id'], ['residents.id'], name=op.f('fk_imm_children_guardian_resident_id_residents')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_imm_children_resident_id_residents')),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_children_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_children')),
    sa.UniqueConstraint('id_digest', name=op.f('uq_imm_children_id_digest'))
    )
    op.create_index(op.f('ix_imm_children_birth_date'), 'imm_children', ['birth_date'], unique=False)
    op.create_index(op.f('ix_imm_children_site_id'), 'imm_children', ['site_id'], unique=False)
    op.create_index(op.f('ix_imm_children_village_code'), 'imm_children', ['village_code'], unique=False)
    op.create_table('imm_release_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('person_digest', sa.String(length=64), nullable=False),
    sa.Column('person_masked', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('place', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('offer_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('place IS NULL OR place >= 1', name=op.f('ck_imm_release_requests_place_positive')),
    sa.ForeignKeyConstraint(['release_id'], ['imm_releases.id'], name=op.f('fk_imm_release_requests_release_id_imm_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_release_requests')),
    sa.UniqueConstraint('release_id', 'person_digest', name=op.f('uq_imm_release_requests_release_id_person_digest')),
    sa.UniqueConstraint('release_id', 'place', name=op.f('uq_imm_release_requests_release_id_place')),
    sa.UniqueConstraint('release_id', 'seq', name=op.f('uq_imm_release_requests_release_id_seq'))
    )
    op.create_index(op.f('ix_imm_release_requests_release_id'), 'imm_release_requests', ['release_id'], unique=False)
    op.create_table('imm_session_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('start', sa.String(length=5), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.CheckConstraint('booked >= 0 AND booked <= capacity', name=op.f('ck_imm_session_slots_not_overbooked')),
    sa.ForeignKeyConstraint(['session_id'], ['imm_sessions.id'], name=op.f('fk_imm_session_slots_session_id_imm_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_session_slots')),
    sa.UniqueConstraint('session_id', 'start', name=op.f('uq_imm_session_slots_session_id_start'))
    )
    op.create_index(op.f('ix_imm_session_slots_session_id'), 'imm_session_slots', ['session_id'], unique=False)
    op.create_table('imm_session_vaccines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('vaccine', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.CheckConstraint('booked >= 0 AND booked <= capacity', name=op.f('ck_imm_session_vaccines_not_overbooked')),
    sa.ForeignKeyConstraint(['session_id'], ['imm_sessions.id'], name=op.f('fk_imm_session_vaccines_session_id_imm_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_session_vaccines')),
    sa.UniqueConstraint('session_id', 'vaccine', name=op.f('uq_imm_session_vaccines_session_id_vaccine'))
    )
    op.create_table('imm_stock_moves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lot_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('doses', sa.Integer(), nullable=False),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=128), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('receipt', 'wastage', 'adjustment')", name=op.f('ck_imm_stock_moves_kind_known')),
    sa.ForeignKeyConstraint(['lot_id'], ['imm_lots.id'], name=op.f('fk_imm_stock_moves_lot_id_imm_lots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_stock_moves'))
    )
    op.create_index(op.f('ix_imm_stock_moves_lot_id'), 'imm_stock_moves', ['lot_id'], unique=False)
    op.create_table('imm_bookings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=True),
    sa.Column('child_id', sa.Integer(), nullable=True),
    sa.Column('person_digest', sa.String(length=64), nullable=False),
    sa.Column('person_name', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('vaccines', sa.JSON(), nullable=False),
    sa.Column('self_paid', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('active_key', sa.String(length=96), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['imm_children.id'], name=op.f('fk_imm_bookings_child_id_imm_children')),
    sa.ForeignKeyConstraint(['session_id'], ['imm_sessions.id'], name=op.f('fk_imm_bookings_session_id_imm_sessions')),
    sa.ForeignKeyConstraint(['slot_id'], ['imm_session_slots.id'], name=op.f('fk_imm_bookings_slot_id_imm_session_slots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_bookings')),
    sa.UniqueConstraint('active_key', name=op.f('uq_imm_bookings_active_key')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_imm_bookings_idempotency_key'))
    )
    op.create_index(op.f('ix_imm_bookings_child_id'), 'imm_bookings', ['child_id'], unique=False)
    op.create_index(op.f('ix_imm_bookings_session_id'), 'imm_bookings', ['session_id'], unique=False)
    op.create_table('imm_family_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['imm_children.id'], name=op.f('fk_imm_family_codes_child_id_imm_children')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_family_codes'))
    )
    op.create_index(op.f('ix_imm_family_codes_child_id'), 'imm_family_codes', ['child_id'], unique=False)
    op.create_table('imm_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_key', sa.String(length=96), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('vaccine', sa.String(length=16), nullable=False),
    sa.Column('dose_number', sa.Integer(), nullable=True),
    sa.Column('given_on', sa.Date(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('vaccinator', sa.String(length=64), nullable=False),
    sa.Column('lot', sa.String(length=32), nullable=False),
    sa.Column('manufacturer', sa.String(length=64), nullable=False),
    sa.Column('route', sa.String(length=8), nullable=False),
    sa.Column('body_site', sa.String(length=24), nullable=False),
    sa.Column('aefi', sa.JSON(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['imm_upload_batches.id'], name=op.f('fk_imm_records_batch_id_imm_upload_batches')),
    sa.ForeignKeyConstraint(['child_id'], ['imm_children.id'], name=op.f('fk_imm_records_child_id_imm_children')),
    sa.ForeignKeyConstraint(['site_id'], ['imm_sites.id'], name=op.f('fk_imm_records_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_records')),
    sa.UniqueConstraint('record_key', name=op.f('uq_imm_records_record_key'))
    )
    op.create_index('ix_imm_records_child_date', 'imm_records', ['child_id', 'given_on'], unique=False)
    op.create_index('ix_imm_records_site_lot', 'imm_records', ['site_id', 'vaccine', 'lot'], unique=False)
    op.create_table('imm_transfers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('from_site_id', sa.Integer(), nullable=False),
    sa.Column('to_site_id', sa.Integer(), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['imm_children.id'], name=op.f('fk_imm_transfers_child_id_imm_children')),
    sa.ForeignKeyConstraint(['from_site_id'], ['imm_sites.id'], name=op.f('fk_imm_transfers_from_site_id_imm_sites')),
    sa.ForeignKeyConstraint(['to_site_id'], ['imm_sites.id'], name=op.f('fk_imm_transfers_to_site_id_imm_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imm_transfers'))
    )
    op.create_index(op.f('ix_imm_transfers_child_id'), 'imm_transfers', ['child_id'], unique=False)

def downgrade() -> None:
    """Drop the immunisation tables."""
    op.drop_index(op.f('ix_imm_transfers_child_id'), table_name='imm_transfers')
    op.drop_table('imm_transfers')
    op.drop_index('ix_imm_records_site_lot', table_name='imm_records')
    op.drop_index('ix_imm_records_child_date', table_name='imm_records')
    op.drop_table('imm_records')
    op.drop_index(op.f('ix_imm_family_codes_child_id'), table_name='imm_family_codes')
    op.drop_table('imm_family_codes')
    op.drop_index(op.f('ix_imm_bookings_session_id'), table_name='imm_bookings')
    op.drop_index(op.f('ix_imm_bookings_child_id'), table_name='imm_bookings')
    op.drop_table('imm_bookings')
    op.drop_index(op.f('ix_imm_stock_moves_lot_id'), table_name='imm_stock_moves')
    op.drop_table('imm_stock_moves')
    op.drop_table('imm_session_vaccines')
    op.drop_index(op.f('ix_imm_session_slots_session_id'), table_name='imm_session_slots')
    op.drop_table('imm_session_slots')
    op.drop_index(op.f('ix_imm_release_requests_release_id'), table_name='imm_release_requests')
    op.drop_table('imm_release_requests')
    op.drop_index(op.f('ix_imm_children_village_code'), table_name='imm_children')
    op.drop_index(op.f('ix_imm_children_site_id'), table_name='imm_children')
    op.drop_index(op.f('ix_imm_children_birth_date'), table_name='imm_children')
    op.drop_table('imm_children')
    op.drop_index(op.f('ix_imm_upload_batches_content_sha256'), table_name='imm_upload_batches')
    op.drop_table('imm_upload_batches')
    op.drop_index(op.f('ix_imm_site_stops_site_id'), table_name='imm_site_stops')
    op.drop_table('imm_site_stops')
    op.drop_table('imm_site_capacity')
    op.drop_index(op.f('ix_imm_sessions_site_id'), table_name='imm_sessions')
    op.drop_index(op.f('ix_imm_sessions_on_date'), table_name='imm_sessions')
    op.drop_table('imm_sessions')
    op.drop_table('imm_releases')
    op.drop_index(op.f('ix_imm_lots_site_id'), table_name='imm_lots')
    op.drop_table('imm_lots')
    op.drop_index(op.f('ix_imm_sites_facility_id'), table_name='imm_sites')
    op.drop_index(op.f('ix_imm_sites_division_prefix'), table_name='imm_sites')
    op.drop_table('imm_sites')
