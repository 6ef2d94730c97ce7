from shared.db.base import Base, Timestamps, UUIDPrimaryKey
from shared.db.engine import (
    SessionMaker,
    create_engine,
    create_sessionmaker,
    flush_unique,
    get_sessionmaker,
    reset_sessionmaker,
    set_default_sessionmaker,
    unit_of_work,
    use_sessionmaker,
)

__all__ = [
    "Base",
    "SessionMaker",
    "Timestamps",
    "UUIDPrimaryKey",
    "create_engine",
    "create_sessionmaker",
    "flush_unique",
    "get_sessionmaker",
    "reset_sessionmaker",
    "set_default_sessionmaker",
    "unit_of_work",
    "use_sessionmaker",
]
