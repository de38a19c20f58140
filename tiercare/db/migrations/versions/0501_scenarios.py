"""scenarios: stored road networks, scenarios and their evaluations

Revision ID: 0501
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0501"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("scenarios",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "road_networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("division_code", sa.String(length=12), nullable=False),
        sa.Column("class_field", sa.String(length=32), nullable=False),
        sa.Column("speed_field", sa.String(length=32), nullable=False),
        sa.Column("geojson", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_road_networks")),
        sa.UniqueConstraint("name", name=op.f("uq_road_networks_name")),
    )
    op.create_index(op.f("ix_road_networks_division_code"), "road_networks", ["division_code"])
    op.create_table(
        "scenarios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("division_code", sa.String(length=12), nullable=False),
        sa.Column("road_network_id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["road_network_id"], ["road_networks.id"],
                                name=op.f("fk_scenarios_road_network_id_road_networks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenarios")),
        sa.UniqueConstraint("name", name=op.f("uq_scenarios_name")),
    )
    op.create_index(op.f("ix_scenarios_division_code"), "scenarios", ["division_code"])
    op.create_table(
        "scenario_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("villages", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["scenario_id"], ["scenarios.id"], ondelete="CASCADE",
                                name=op.f("fk_scenario_evaluations_scenario_id_scenarios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_evaluations")),
    )
    op.create_index(op.f("ix_scenario_evaluations_scenario_id"), "scenario_evaluations",
                    ["scenario_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("scenario_evaluations")
    op.drop_table("scenarios")
    op.drop_table("road_networks")
