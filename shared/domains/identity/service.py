"""Tenants, people, roles, API clients and mandates.  Flushes, never commits; audits each change.

``Actor`` says who does it (a principal, the platform CLI, the system) for the audit trail.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue, documents
from shared.config import get_settings
from shared.db import flush_unique
from shared.domains.audit.service import Actor, record
from shared.domains.channels import templates as message_templates
from shared.domains.collections import cadences
from shared.domains.identity import schemas
from shared.domains.identity.errors import DuplicateTenant, DuplicateUser, InvalidMandate
from shared.domains.money import rules as fee_rules
from shared.errors import FieldError, NotFound, ValidationFailed
from shared.models import (
    Mandate,
    MandateAction,
    Membership,
    OAuthClient,
    Role,
    Tenant,
    TenantKind,
    User,
)
from shared.passwords import digest_secret, hash_password, new_secret
from shared.tenancy import TENANT_SCOPES, Grant, Scopes

SYSTEM_ACTOR = Actor("system", None)
CLI_ACTOR = Actor("cli", None)


def _now() -> datetime:
    return datetime.now(UTC)


# --- tenants -----------------------------------------------------------------------------------


def normalize_document(value: str) -> str:
    """The creditor's CNPJ (numeric or alphanumeric), check digits verified, without
    punctuation."""
    try:
        cleaned = documents.normalize_document(value)
    except InvalidValue as exc:
        raise ValidationFailed(
            "The CNPJ is not valid.", errors=[FieldError("document", exc.reason)]
        ) from exc
    if documents.document_kind(cleaned) != "cnpj":
        raise ValidationFailed(
            "The CNPJ is not valid.",
            errors=[FieldError("document", "must be a CNPJ (14 characters), not a CPF")],
        )
    return cleaned


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50] or "tenant"
    return f"{slug}-{secrets.token_hex(3)}"


async def create_tenant(session: AsyncSession, data: schemas.TenantCreate, actor: Actor) -> Tenant:
    tenant = Tenant(
        id=uuid.uuid4(),
        slug=data.slug or _slugify(data.name),
        name=data.name,
        kind=TenantKind(data.kind),
        legal_name=data.legal_name,
        document=normalize_document(data.document) if data.document else None,
        address=data.address,
        city=data.city,
        state=data.state,
        time_zone=data.time_zone,
    )
    session.add(tenant)
    await flush_unique(session, DuplicateTenant("A tenant with this slug or CNPJ already exists."))
    if tenant.kind is TenantKind.RETAILER:
        await fee_rules.ensure_default(session, tenant.id)
        await message_templates.ensure_defaults(session, tenant.id)
        await cadences.ensure_defaults(session, tenant.id)
    await record(
        session,
        "tenant.created",
        tenant_id=tenant.id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="tenant",
        subject_id=str(tenant.id),
        data={"name": tenant.name, "kind": tenant.kind},
    )
    return tenant


async def update_tenant(
    session: AsyncSession, tenant: Tenant, data: schemas.TenantUpdate, actor: Actor
) -> Tenant:
    changes: dict[str, Any] = {
        f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not None
    }
    if "document" in changes:
        changes["document"] = normalize_document(changes["document"])
    before = {k: getattr(tenant, k) for k in changes}
    for key, value in changes.items():
        setattr(tenant, key, value)
    await flush_unique(session, DuplicateTenant("Another tenant already has this CNPJ."))
    await record(
        session,
        "tenant.updated",
        tenant_id=tenant.id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="tenant",
        subject_id=str(tenant.id),
        data={"before": before, "after": changes},
    )
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} was not found.")
    return tenant


# --- users and memberships ---------------------------------------------------------------------


async def create_user(session: AsyncSession, data: schemas.UserCreate, actor: Actor) -> User:
    user = User(
        id=uuid.uuid4(),
        email=data.email.strip().lower(),
        name=data.name,
        password_hash=hash_password(data.password),
        is_platform_admin=data.is_platform_admin,
        active=True,
    )
    session.add(user)
    await flush_unique(session, DuplicateUser("A user with this e-mail already exists."))
    await record(
        session,
        "user.created",
        tenant_id=None,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="user",
        subject_id=str(user.id),
        data={"platform_admin": user.is_platform_admin},
    )
    return user


async def find_user(session: AsyncSession, email: str) -> User | None:
    result = await session.scalars(select(User).where(User.email == email.strip().lower()))
    return result.one_or_none()


async def add_member(
    session: AsyncSession, tenant_id: uuid.UUID, user: User, role: Role, actor: Actor
) -> Membership:
    membership = Membership(id=uuid.uuid4(), user_id=user.id, tenant_id=tenant_id, role=role)
    session.add(membership)
    await flush_unique(session, DuplicateUser("This person is already a member of the tenant."))
    await record(
        session,
        "membership.created",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="user",
        subject_id=str(user.id),
        data={"role": role},
    )
    return membership


async def change_role(
    session: AsyncSession, membership: Membership, role: Role, actor: Actor
) -> Membership:
    before = membership.role
    membership.role = role
    await session.flush()
    await record(
        session,
        "membership.role_changed",
        tenant_id=membership.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="user",
        subject_id=str(membership.user_id),
        data={"before": before, "after": role},
    )
    return membership


async def remove_member(session: AsyncSession, membership: Membership, actor: Actor) -> None:
    await session.delete(membership)
    await session.flush()
    await record(
        session,
        "membership.removed",
        tenant_id=membership.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="user",
        subject_id=str(membership.user_id),
        data={"role": membership.role},
    )


# --- API clients -------------------------------------------------------------------------------


def _check_scopes(scopes: list[str], *, platform: bool) -> list[str]:
    allowed = TENANT_SCOPES | ({Scopes.ADMIN.value} if platform else set())
    unknown = sorted(set(scopes) - allowed)
    if unknown:
        raise ValidationFailed(
            "Unknown or forbidden scopes.",
            errors=[FieldError("scopes", f"not allowed: {', '.join(unknown)}")],
        )
    return sorted(set(scopes))


async def create_client(
    session: AsyncSession, tenant_id: uuid.UUID | None, data: schemas.ClientCreate, actor: Actor
) -> tuple[OAuthClient, str | None]:
    """A new API client; returns it with its secret (shown once; only a digest is kept)."""
    scopes = _check_scopes(data.scopes, platform=tenant_id is None)
    grant_types = sorted(set(data.grant_types))
    if "authorization_code" in grant_types and not data.redirect_uris:
        raise ValidationFailed(
            "An authorization-code client needs at least one redirect URI.",
            errors=[FieldError("redirect_uris", "required for authorization_code")],
        )
    if data.public and "client_credentials" in grant_types:
        raise ValidationFailed(
            "A public client cannot use client credentials.",
            errors=[FieldError("grant_types", "client_credentials needs a confidential client")],
        )
    secret = None if data.public else new_secret()
    client = OAuthClient(
        id=uuid.uuid4(),
        client_id=f"qc_{secrets.token_urlsafe(18)}",
        tenant_id=tenant_id,
        name=data.name,
        secret_digest=digest_secret(secret) if secret else None,
        grant_types=grant_types,
        redirect_uris=list(data.redirect_uris),
        scopes=scopes,
        token_endpoint_auth_method="none" if data.public else "client_secret_basic",
    )
    session.add(client)
    await session.flush()
    await record(
        session,
        "client.created",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="client",
        subject_id=client.client_id,
        data={"name": client.name, "scopes": scopes, "grant_types": grant_types},
    )
    return client, secret


async def rotate_client_secret(session: AsyncSession, client: OAuthClient, actor: Actor) -> str:
    """A new secret; the previous one keeps working for the overlap period, then stops."""
    if client.secret_digest is None:
        raise ValidationFailed("A public client has no secret to rotate.")
    secret = new_secret()
    client.previous_secret_digest = client.secret_digest
    client.previous_secret_expires_at = _now() + timedelta(
        seconds=get_settings().client_secret_overlap_s
    )
    client.secret_digest = digest_secret(secret)
    await session.flush()
    await record(
        session,
        "client.secret_rotated",
        tenant_id=client.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="client",
        subject_id=client.client_id,
        data={"previous_valid_until": client.previous_secret_expires_at.isoformat()},
    )
    return secret


async def revoke_client(session: AsyncSession, client: OAuthClient, actor: Actor) -> None:
    client.revoked_at = client.revoked_at or _now()
    await session.flush()
    await record(
        session,
        "client.revoked",
        tenant_id=client.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="client",
        subject_id=client.client_id,
    )


# --- mandates ----------------------------------------------------------------------------------


async def create_mandate(
    session: AsyncSession, retailer: Tenant, data: schemas.MandateCreate, actor: Actor
) -> Mandate:
    if retailer.kind != TenantKind.RETAILER:
        raise InvalidMandate("Only a retailer can give a mandate.")
    # The retailer cannot read other tenants (RLS); it may learn only whether an id is an agency.
    kind = await session.scalar(select(func.quita_tenant_kind(data.agency_id)))
    if kind != TenantKind.AGENCY:
        raise InvalidMandate(
            "The mandate must name an agency.",
            errors=[FieldError("agency_id", "not an agency known to Quita")],
        )
    valid_from = data.valid_from or _now()
    if data.valid_until is not None and data.valid_until <= valid_from:
        raise InvalidMandate(
            "The mandate ends before it starts.",
            errors=[FieldError("valid_until", "must be after valid_from")],
        )
    mandate = Mandate(
        id=uuid.uuid4(),
        tenant_id=retailer.id,
        agency_id=data.agency_id,
        tags=sorted(set(data.tags)) if data.tags else None,
        actions=sorted({MandateAction(a) for a in data.actions} | {MandateAction.READ}),
        limits=data.limits,
        valid_from=valid_from,
        valid_until=data.valid_until,
    )
    session.add(mandate)
    await session.flush()
    await record(
        session,
        "mandate.created",
        tenant_id=retailer.id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="mandate",
        subject_id=str(mandate.id),
        data={
            "agency_id": str(data.agency_id),
            "actions": mandate.actions,
            "tags": mandate.tags,
            "limits": mandate.limits,
        },
    )
    return mandate


async def revoke_mandate(session: AsyncSession, mandate: Mandate, actor: Actor) -> Mandate:
    """Effective at once: grants are read from Postgres on every request."""
    mandate.revoked_at = mandate.revoked_at or _now()
    await session.flush()
    await record(
        session,
        "mandate.revoked",
        tenant_id=mandate.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="mandate",
        subject_id=str(mandate.id),
        data={"agency_id": str(mandate.agency_id)},
    )
    return mandate


def active_mandate_filter(now: datetime) -> Any:
    return and_(
        Mandate.revoked_at.is_(None),
        Mandate.valid_from <= now,
        or_(Mandate.valid_until.is_(None), Mandate.valid_until > now),
    )


async def agency_grants(session: AsyncSession, agency_id: uuid.UUID) -> tuple[Grant, ...]:
    """The mandates in force for ``agency_id`` right now (the session must see them)."""
    rows = await session.scalars(
        select(Mandate).where(Mandate.agency_id == agency_id, active_mandate_filter(_now()))
    )
    return tuple(
        Grant(
            mandate_id=m.id,
            retailer_id=m.tenant_id,
            tags=tuple(m.tags) if m.tags else None,
            actions=frozenset(m.actions),
            limits=dict(m.limits),
            valid_until=m.valid_until,
        )
        for m in rows
    )


def mandate_out(m: Mandate) -> schemas.MandateOut:
    now = _now()
    active = (
        m.revoked_at is None
        and m.valid_from <= now
        and (m.valid_until is None or m.valid_until > now)
    )
    return schemas.MandateOut(
        id=m.id,
        retailer_id=m.tenant_id,
        agency_id=m.agency_id,
        actions=list(m.actions),
        tags=list(m.tags) if m.tags else None,
        limits=dict(m.limits),
        valid_from=m.valid_from,
        valid_until=m.valid_until,
        revoked_at=m.revoked_at,
        active=active,
    )


def tenant_out(t: Tenant) -> schemas.TenantOut:
    return schemas.TenantOut(
        id=t.id,
        slug=t.slug,
        name=t.name,
        kind=t.kind,
        legal_name=t.legal_name,
        document=t.document,
        address=t.address,
        city=t.city,
        state=t.state,
        time_zone=t.time_zone,
        status=t.status,
        created_at=t.created_at,
    )


def client_out(c: OAuthClient) -> schemas.ClientOut:
    return schemas.ClientOut(
        id=c.id,
        client_id=c.client_id,
        tenant_id=c.tenant_id,
        name=c.name,
        scopes=list(c.scopes),
        grant_types=list(c.grant_types),
        redirect_uris=list(c.redirect_uris),
        token_endpoint_auth_method=c.token_endpoint_auth_method,
        created_at=c.created_at,
        revoked_at=c.revoked_at,
    )


async def suspend_access_of(session: AsyncSession, client: OAuthClient) -> None:
    """Revoke the client's live refresh tokens too (used when a client is revoked)."""
    from shared.models import OAuthRefreshToken

    await session.execute(
        update(OAuthRefreshToken)
        .where(
            OAuthRefreshToken.client_id == client.client_id, OAuthRefreshToken.revoked_at.is_(None)
        )
        .values(revoked_at=_now())
    )
