"""Output claims: each job's output in normalized form (to refuse overlapping outputs), and a lock row that
serializes submissions (check-then-insert is one transaction on SQLite and PostgreSQL alike).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("output_key", sa.Text, nullable=True))
    op.create_index("ix_jobs_output_key", "jobs", ["output_key"])
    locks = op.create_table(
        "locks", sa.Column("name", sa.String(40), primary_key=True), sa.Column("n", sa.Integer, nullable=False)
    )
    op.bulk_insert(locks, [{"name": "submit", "n": 0}])
    from curation.io.policy import path_key

    conn = op.get_bind()
    for job_id, output in conn.execute(sa.text("SELECT id, output FROM jobs")).all():
        key = path_key(output).key or output
        conn.execute(sa.text("UPDATE jobs SET output_key = :k WHERE id = :i"), {"k": key, "i": job_id})


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_index("ix_jobs_output_key", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("output_key")
