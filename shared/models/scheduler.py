from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class SchedulerRun(Base):
    """When each periodic task last ran, shared by every scheduler instance."""

    __tablename__ = "scheduler_runs"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_run_at: Mapped[datetime]
