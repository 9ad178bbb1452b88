"""The use cases of the front-end API, over memory, the database and the look-ups.

The service speaks the domain: typed arguments in, results out, and refusals as the
exceptions of ``errors`` (no status code, no reply text). ``web/`` reads requests into
those arguments and maps each exception to its HTTP status and text, endpoint by
endpoint. ``usecases`` holds the Service; ``registration`` its register (memory first,
then the database, read back when they disagree); ``replies`` builds and caches the
encoded dashboards and boards it serves; ``privacy`` erases users and purges old
unregistered devices in turn with the flush; ``export`` turns a board into a table;
``ports`` says what the service needs of its neighbours (protocols the store, the CMX
client, the feeds' sightings and the flusher meet).

May import ``store``, ``lookup``, ``feeds``, ``ops``, ``core`` and ``config``; never
``web``, ``background``, ``runtime`` or ``server``.
"""

from tys_server.service.errors import (
    AliasTaken,
    DeviceNotRegistered,
    DeviceOwned,
    LimitReached,
    LocationUnavailable,
    NoDevices,
    NotOnWifi,
    ServiceError,
    StorageFailed,
    UsernameTaken,
    UserNotFound,
)
from tys_server.service.registration import Registration
from tys_server.service.replies import DATE_FORMAT
from tys_server.service.usecases import Service

__all__ = [
    "DATE_FORMAT", "AliasTaken", "DeviceNotRegistered", "DeviceOwned", "LimitReached",
    "LocationUnavailable", "NoDevices", "NotOnWifi", "Registration", "Service",
    "ServiceError", "StorageFailed", "UserNotFound", "UsernameTaken",
]
