"""What the identity API reads and writes (msgspec structs: validated at the edge, in OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
Cnpj = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z./-]{14,18}$")]
Uf = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
RoleName = Literal["owner", "admin", "operator", "viewer"]
ActionName = Literal["read", "message", "negotiate"]


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    kind: Literal["retailer", "agency"]
    slug: Slug | None = None
    legal_name: Name | None = None
    document: Cnpj | None = None
    address: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    city: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    state: Uf | None = None
    time_zone: str = "America/Sao_Paulo"


class TenantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    legal_name: Name | None = None
    document: Cnpj | None = None
    address: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    city: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    state: Uf | None = None
    time_zone: str | None = None


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    kind: str
    legal_name: str | None
    document: str | None
    address: str | None
    city: str | None
    state: str | None
    time_zone: str
    status: str
    created_at: datetime


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    name: Name
    password: Password
    is_platform_admin: bool = False


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    is_platform_admin: bool
    active: bool


class MemberCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName
    user_id: uuid.UUID | None = None
    email: Email | None = None


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName


class MemberOut(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str
    role: str


class ClientCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    scopes: list[str]
    grant_types: list[Literal["client_credentials", "authorization_code", "refresh_token"]] = (
        msgspec.field(default_factory=lambda: ["client_credentials"])
    )
    redirect_uris: list[Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$")]] = msgspec.field(
        default_factory=list
    )
    public: bool = False  # a public client (SPA, mobile) authenticates with PKCE only


class ClientOut(msgspec.Struct):
    id: uuid.UUID
    client_id: str
    tenant_id: uuid.UUID | None
    name: str
    scopes: list[str]
    grant_types: list[str]
    redirect_uris: list[str]
    token_endpoint_auth_method: str
    created_at: datetime
    revoked_at: datetime | None


class ClientWithSecret(msgspec.Struct):
    """Returned once, at creation or rotation: the secret is never shown again."""

    client: ClientOut
    client_secret: str | None


class MandateCreate(msgspec.Struct, forbid_unknown_fields=True):
    agency_id: uuid.UUID
    actions: list[ActionName]
    tags: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] | None = None
    limits: dict[str, Any] = msgspec.field(default_factory=dict)
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class MandateOut(msgspec.Struct):
    id: uuid.UUID
    retailer_id: uuid.UUID
    agency_id: uuid.UUID
    actions: list[str]
    tags: list[str] | None
    limits: dict[str, Any]
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None
    active: bool


class Me(msgspec.Struct):
    kind: str
    subject: str
    client_id: str
    tenant: TenantOut | None
    role: str | None
    scopes: list[str]
    mandates: list[MandateOut]


class AuditEventOut(msgspec.Struct):
    id: int
    actor_type: str
    actor_id: str | None
    action: str
    subject_type: str | None
    subject_id: str | None
    data: dict[str, Any]
    request_id: str | None
    created_at: datetime
