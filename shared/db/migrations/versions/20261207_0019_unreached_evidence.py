"""the sweeper's evidence that a message never reached the provider: the delivered messages of a
channel by when they left, so finding one that left after an ``unknown`` message is an index
probe (``collections.tasks._UNREACHED``)

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_contact_attempts_channel_delivered",
        "contact_attempts",
        ["channel_id", "sending_at"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_contact_attempts_channel_delivered",
        table_name="contact_attempts",
        postgresql_where=sa.text("delivered_at IS NOT NULL"),
    )
