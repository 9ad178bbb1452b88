"""The use cases' refusals: expected outcomes for the caller to answer, not faults.

web/ maps each to its HTTP status and text, endpoint by endpoint (DESIGN 7 and 15).
"""

from __future__ import annotations

# The look-up's refusals pass through register() and ip_username() as they are.
from tys_server.lookup.cmx_api import LocationUnavailable as LocationUnavailable
from tys_server.lookup.cmx_api import NotOnWifi as NotOnWifi


class ServiceError(Exception):
    """A use case refused: an expected outcome for the caller to answer, not a fault."""


class UsernameTaken(ServiceError):
    """Another user already has this username (unique case-insensitively), or it is an alias."""


class DeviceOwned(ServiceError):
    """The device at this IP is registered to another user."""


class LimitReached(ServiceError):
    """The user already owns registration.max_devices_per_user devices."""


class UserNotFound(ServiceError):
    """No user has this username."""


class NoDevices(ServiceError):
    """The user owns no device (seen in legacy data): there is nothing to show."""


class DeviceNotRegistered(ServiceError):
    """The device at this IP belongs to nobody."""


class AliasTaken(ServiceError):
    """The alias is another user's username or alias (it would pass for them on a board)."""


class StorageFailed(ServiceError):
    """The database did not take the change; memory is left as it was."""
