"""``quita tenant|user|member|client|keys|token``: platform operators' identity commands."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.audit.service import record
from shared.domains.identity import keys, schemas, service, tokens
from shared.domains.identity.service import CLI_ACTOR
from shared.errors import AppError
from shared.models import OAuthClient, Role, Tenant
from shared.tenancy import SYSTEM, use_scope

Out = Callable[[argparse.Namespace, dict[str, Any], str], None]


async def _in_system_session(
    settings: Settings, fn: Callable[[AsyncSession], Awaitable[Any]]
) -> Any:
    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(settings, process="cli")
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            result = await fn(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _run(settings: Settings, fn: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(_in_system_session(settings, fn))
    except AppError as exc:
        detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        print(f"error: {exc.detail}" + (f" ({detail})" if detail else ""), file=sys.stderr)
        raise SystemExit(2) from None


async def _tenant_by_ref(session: AsyncSession, ref: str) -> Tenant:
    import uuid

    try:
        stmt = select(Tenant).where(Tenant.id == uuid.UUID(ref))
    except ValueError:
        stmt = select(Tenant).where(Tenant.slug == ref)
    tenant = (await session.scalars(stmt)).one_or_none()
    if tenant is None:
        print(f"error: no tenant {ref!r} (give its id or slug)", file=sys.stderr)
        raise SystemExit(2)
    return tenant


def register(sub: Any, add: Callable[..., argparse.ArgumentParser], out: Out) -> None:
    """Add the identity commands to the ``quita`` parser."""

    def tenant_create(args: argparse.Namespace, settings: Settings) -> None:
        data = schemas.TenantCreate(
            name=args.name,
            kind=args.kind,
            slug=args.slug,
            legal_name=args.legal_name,
            document=args.cnpj,
            city=args.city,
            state=args.state,
        )
        t = _run(settings, lambda s: service.create_tenant(s, data, CLI_ACTOR))
        out(
            args,
            {"id": str(t.id), "slug": t.slug, "name": t.name, "kind": t.kind},
            f"tenant {t.name} ({t.kind}) created: id {t.id}, slug {t.slug}",
        )

    def tenant_list(args: argparse.Namespace, settings: Settings) -> None:
        async def fetch(s: AsyncSession) -> list[Tenant]:
            return list(await s.scalars(select(Tenant).order_by(Tenant.created_at)))

        rows = _run(settings, fetch)
        data = [
            {"id": str(t.id), "slug": t.slug, "name": t.name, "kind": t.kind, "status": t.status}
            for t in rows
        ]
        human = "\n".join(f"{t['id']}  {t['kind']:<8} {t['slug']:<24} {t['name']}" for t in data)
        out(args, {"tenants": data}, human or "no tenants")

    def user_create(args: argparse.Namespace, settings: Settings) -> None:
        password = (
            sys.stdin.readline().rstrip("\n")
            if args.password_stdin
            else (getpass.getpass("password: "))
        )
        data = schemas.UserCreate(
            email=args.email,
            name=args.name,
            password=password,
            is_platform_admin=args.platform_admin,
        )
        if len(password) < 10:
            print("error: the password needs at least 10 characters", file=sys.stderr)
            raise SystemExit(2)
        u = _run(settings, lambda s: service.create_user(s, data, CLI_ACTOR))
        out(args, {"id": str(u.id), "email": u.email}, f"user {u.email} created: id {u.id}")

    def member_add(args: argparse.Namespace, settings: Settings) -> None:
        async def go(s: AsyncSession) -> Any:
            tenant = await _tenant_by_ref(s, args.tenant)
            user = await service.find_user(s, args.email)
            if user is None:
                print(f"error: no user {args.email}", file=sys.stderr)
                raise SystemExit(2)
            return await service.add_member(s, tenant.id, user, Role(args.role), CLI_ACTOR)

        m = _run(settings, go)
        out(
            args,
            {"id": str(m.id), "tenant_id": str(m.tenant_id), "role": m.role},
            f"{args.email} is now {m.role} of {args.tenant}",
        )

    def client_create(args: argparse.Namespace, settings: Settings) -> None:
        data = schemas.ClientCreate(
            name=args.name,
            scopes=args.scopes.split(),
            grant_types=args.grant_types.split(),
            redirect_uris=args.redirect_uri or [],
            public=args.public,
        )

        async def go(s: AsyncSession) -> Any:
            tenant = await _tenant_by_ref(s, args.tenant) if args.tenant else None
            return await service.create_client(s, tenant.id if tenant else None, data, CLI_ACTOR)

        client, secret = _run(settings, go)
        out(
            args,
            {"client_id": client.client_id, "client_secret": secret},
            f"client_id:     {client.client_id}\nclient_secret: {secret}\n"
            "(the secret is shown only now)",
        )

    def keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
        async def go(s: AsyncSession) -> Any:
            row = await keys.create_key(s)
            await record(
                s,
                "keys.rotated",
                tenant_id=None,
                actor_type="cli",
                actor_id=None,
                subject_type="signing_key",
                subject_id=row.kid,
            )
            return row

        row = _run(settings, go)
        out(
            args,
            {"kid": row.kid},
            f"new signing key {row.kid} is active; the previous one "
            "stays published until its tokens expire",
        )

    def token_mint(args: argparse.Namespace, settings: Settings) -> None:
        async def go(s: AsyncSession) -> Any:
            tenant = await _tenant_by_ref(s, args.tenant)
            client = (
                await s.scalars(
                    select(OAuthClient)
                    .where(
                        OAuthClient.tenant_id == tenant.id,
                        OAuthClient.revoked_at.is_(None),
                        OAuthClient.secret_digest.is_not(None),
                    )
                    .order_by(OAuthClient.created_at)
                )
            ).first()
            if client is None:
                print("error: the tenant has no confidential client", file=sys.stderr)
                raise SystemExit(2)
            k = await keys.load_keys(s, timedelta(seconds=settings.access_token_ttl_s))
            ttl = args.ttl or settings.access_token_ttl_s
            raw, _ = tokens.issue(
                k,
                issuer=settings.oauth_issuer_url,
                audience=settings.oauth_audience,
                ttl_s=ttl,
                subject=client.client_id,
                client_id=client.client_id,
                tenant_id=tenant.id,
                scope=" ".join(sorted(client.scopes)),
                tenant_kind=tenant.kind,
            )
            await record(
                s,
                "token.minted_by_cli",
                tenant_id=tenant.id,
                actor_type="cli",
                actor_id=None,
                subject_type="client",
                subject_id=client.client_id,
                data={"ttl_s": ttl},
            )
            return raw, ttl

        raw, ttl = _run(settings, go)
        out(args, {"access_token": raw, "expires_in": ttl}, raw)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="tenant", required=True)
    p = add("create", tenant_create, "onboard a retailer or an agency", tenant)
    p.add_argument("--name", required=True)
    p.add_argument("--kind", choices=["retailer", "agency"], required=True)
    p.add_argument("--cnpj")
    p.add_argument("--slug")
    p.add_argument("--legal-name")
    p.add_argument("--city")
    p.add_argument("--state")
    add("list", tenant_list, "every tenant", tenant)

    user = sub.add_parser("user", help="people").add_subparsers(dest="user", required=True)
    p = add("create", user_create, "create a person's account", user)
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--platform-admin", action="store_true")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )

    member = sub.add_parser("member", help="roles").add_subparsers(dest="member", required=True)
    p = add("add", member_add, "give a person a role in a tenant", member)
    p.add_argument("--tenant", required=True, help="tenant id or slug")
    p.add_argument("--email", required=True)
    p.add_argument("--role", choices=[r.value for r in Role], required=True)

    client = sub.add_parser("client", help="API clients").add_subparsers(
        dest="client", required=True
    )
    p = add("create", client_create, "create an API client (prints the secret once)", client)
    p.add_argument("--tenant", help="tenant id or slug (omit for a platform client)")
    p.add_argument("--name", default="API client")
    p.add_argument("--scopes", required=True, help='e.g. "portfolio:read portfolio:write"')
    p.add_argument("--grant-types", default="client_credentials")
    p.add_argument("--redirect-uri", action="append")
    p.add_argument("--public", action="store_true")

    keys_parser = sub.add_parser("keys", help="token signing keys")
    ksub = keys_parser.add_subparsers(dest="keys", required=True)
    add("rotate", keys_rotate, "make a new signing key active (no downtime)", ksub)

    p = add("token", token_mint, "mint an access token for a tenant's first API client")
    p.add_argument("--tenant", required=True, help="tenant id or slug")
    p.add_argument("--ttl", type=int, help="seconds (default: the access-token lifetime)")
