"""Who is calling, for which tenant, with which rights.

Built by the API's authentication middleware from a validated access token and handed to
services; the same object decides the database scope and the answers to "may they?".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.models import MandateAction, Role, TenantKind
from shared.tenancy.scope import Scope


class Scopes(StrEnum):
    """OAuth scopes, one pair per resource."""

    PORTFOLIO_READ = "portfolio:read"
    PORTFOLIO_WRITE = "portfolio:write"
    COLLECTIONS_READ = "collections:read"
    COLLECTIONS_WRITE = "collections:write"
    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_WRITE = "conversations:write"
    NEGOTIATION_WRITE = "negotiation:write"
    REPORTS_READ = "reports:read"
    SETTINGS_READ = "settings:read"
    SETTINGS_WRITE = "settings:write"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"


_READ = {
    Scopes.PORTFOLIO_READ,
    Scopes.COLLECTIONS_READ,
    Scopes.CONVERSATIONS_READ,
    Scopes.REPORTS_READ,
    Scopes.SETTINGS_READ,
}
_OPERATE = _READ | {
    Scopes.CONVERSATIONS_WRITE,
    Scopes.COLLECTIONS_WRITE,
    Scopes.NEGOTIATION_WRITE,
}
_MANAGE = _OPERATE | {Scopes.PORTFOLIO_WRITE, Scopes.SETTINGS_WRITE, Scopes.AUDIT_READ}

# What each role may be granted; a token carries the intersection with what it asked for.
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset(_READ),
    Role.OPERATOR: frozenset(_OPERATE),
    Role.ADMIN: frozenset(_MANAGE),
    Role.OWNER: frozenset(_MANAGE),
}
TENANT_SCOPES: frozenset[str] = frozenset(s.value for s in Scopes if s is not Scopes.ADMIN)


class PrincipalKind(StrEnum):
    USER = "user"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Grant:
    """An agency's view of one active mandate."""

    mandate_id: uuid.UUID
    retailer_id: uuid.UUID
    tags: tuple[str, ...] | None  # None: every customer
    actions: frozenset[str]
    limits: dict[str, Any]
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    subject: str  # user id or client id
    client_id: str
    tenant_id: uuid.UUID | None
    tenant_kind: TenantKind | None
    scopes: frozenset[str]
    role: Role | None = None
    is_platform_admin: bool = False
    grants: tuple[Grant, ...] = field(default=())
    token_id: str | None = None

    @classmethod
    def retailer_process(cls, tenant_id: uuid.UUID, subject: str, client_id: str) -> Principal:
        """Quita itself acting for one retailer (a PSP's payments, the chat, an agreement's
        lifecycle): that retailer's rows and nothing else, no scopes to call the API with."""
        return cls(
            kind=PrincipalKind.CLIENT,
            subject=subject,
            client_id=client_id,
            tenant_id=tenant_id,
            tenant_kind=TenantKind.RETAILER,
            scopes=frozenset(),
        )

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def readable_tenants(self, action: MandateAction = MandateAction.READ) -> frozenset[uuid.UUID]:
        """Tenants whose data this principal may act on: its own, plus mandated retailers."""
        own = {self.tenant_id} if self.tenant_id else set()
        return frozenset(own | {g.retailer_id for g in self.grants if action in g.actions})

    def scope(self) -> Scope:
        return Scope(tenant_id=self.tenant_id, readable=self.readable_tenants())

    @property
    def log_context(self) -> dict[str, str]:
        return {
            "tenant_id": str(self.tenant_id) if self.tenant_id else "",
            "principal": f"{self.kind}:{self.subject}",
        }
