"""scenarios: road_networks.feature_count, so listing the layers reads no GeoJSON.

Revision ID: 0502
Revises: 0501
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0502"
down_revision: str | None = "0501"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The length of the layer's ``features`` array, in each supported dialect's JSON functions.
_FEATURE_COUNT_SQL = {
    "sqlite": "json_array_length(geojson, '$.features')",
    "postgresql": "json_array_length(geojson -> 'features')",
}


def upgrade() -> None:
    """Add the feature count and back-fill it from the stored layers, inside the database.

    The column keeps its server default of 0 (as the model declares): SQLite can drop a
    default only by rebuilding the table, which scenarios reference.
    """
    op.add_column("road_networks", sa.Column("feature_count", sa.Integer(), nullable=False,
                                             server_default="0"))
    count = _FEATURE_COUNT_SQL[op.get_bind().dialect.name]
    op.execute(f"UPDATE road_networks SET feature_count = COALESCE({count}, 0)")


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("road_networks", "feature_count")
