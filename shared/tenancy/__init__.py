"""Tenancy: who may see what, enforced in the application and again by Postgres RLS."""

from shared.tenancy.principal import (
    ROLE_SCOPES,
    TENANT_SCOPES,
    Grant,
    Principal,
    PrincipalKind,
    Scopes,
)
from shared.tenancy.scope import SYSTEM, Scope, current_scope, tenant_scope, use_scope

__all__ = [
    "ROLE_SCOPES",
    "SYSTEM",
    "TENANT_SCOPES",
    "Grant",
    "Principal",
    "PrincipalKind",
    "Scope",
    "Scopes",
    "current_scope",
    "tenant_scope",
    "use_scope",
]
