from __future__ import annotations

from shared.errors import Conflict, Forbidden, ValidationFailed


class DuplicateTenant(Conflict):
    code = "tenant_exists"


class DuplicateUser(Conflict):
    code = "user_exists"


class InvalidMandate(ValidationFailed):
    code = "invalid_mandate"


class RoleNotAllowed(Forbidden):
    code = "role_not_allowed"
