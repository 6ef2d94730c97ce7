"""Guards: which scopes (and roles) a route needs.  Declared per route with ``requires(...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from shared.models import Role
from shared.tenancy import Principal, Scopes

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise PermissionDeniedException("No principal on this request.")
    return user


def requires(*scopes: Scopes, roles: tuple[Role, ...] = ()) -> Guard:
    """The token must carry every scope in ``scopes``; a person must also hold one of ``roles``
    (clients are bound by their scopes alone)."""
    needed = frozenset(s.value for s in scopes)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        missing = needed - principal.scopes
        if missing:
            raise PermissionDeniedException(
                f"This needs the scope(s): {', '.join(sorted(missing))}."
            )
        if roles and principal.role is not None and principal.role not in roles:
            raise PermissionDeniedException(
                f"This needs one of the roles: {', '.join(r.value for r in roles)}."
            )

    return guard


def platform_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not principal_of(connection).is_platform_admin:
        raise PermissionDeniedException("This is for platform administrators.")
