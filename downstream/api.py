"""The consent API at /api/v1: django-ninja, OpenAPI 3.1 generated from this code.

Every error is application/problem+json (RFC 9457). Authentication, the body
size limit and the rate limit run before anything parses the request body.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import re
import threading
import time
import typing
from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern
from django.urls import path as django_path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder, Status
from ninja.security.http import HttpBearer

from downstream import feed, schemas, selectors, services
from downstream.models import ApiClient, IdempotencyRecord, Manifest, SigningKey, hash_token
from downstream.selectors import AuthenticatedClient

logger = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://consent-portal.invalid/problems/"
DESCRIPTION = """\
Ask whether tracks may be used for a purpose, follow every change, acknowledge
withdrawals, cite signed manifests, and report use.

Authenticate with `Authorization: Bearer <token>` (staff issue tokens). Each
client reads only the purposes in its scope. Errors are
`application/problem+json`. POSTs accept an `Idempotency-Key` header: a retry
with the same key and body gets the first answer again.

Webhooks (when staff register an HTTPS endpoint for a client): each change is
POSTed as `{"type": "consent.change", "timestamp", "data": <a change as in
/consent/changes>}`, signed per Standard Webhooks (`webhook-id`,
`webhook-timestamp`, `webhook-signature`). Deliveries are retried and may
arrive out of order; the change feed is the ordered record.
"""


# --- Problems ---------------------------------------------------------------------------


class ApiProblem(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.extra = status, slug, title, detail, extra


class RateLimited(ApiProblem):
    def __init__(self, retry_after: int):
        super().__init__(
            429, "rate-limited", "Too many requests", f"Over this client's rate limit; retry in {retry_after} s."
        )
        self.retry_after = retry_after


def problem_response(status: int, slug: str, title: str, detail: str, **extra: Any) -> HttpResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return HttpResponse(json.dumps(body, default=str), status=status, content_type=PROBLEM)


def _field_name(loc: Any) -> str:
    parts = [str(p) for p in (loc or ())]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    if parts and parts[0] in {"payload", "params", "filters"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


class PortalApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        # Errors are served as application/problem+json; say so in the schema.
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content")
                    if int(status) >= 400 and content and "application/json" in content:
                        content[PROBLEM] = content.pop("application/json")
                    if int(status) == 429:
                        response["headers"] = {
                            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
                        }
        # /consent/check validates its body itself (see _check_payload); its schema is still CheckIn.
        schema["components"]["schemas"].setdefault(
            "CheckIn", schemas.CheckIn.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        return schema

    def _get_urls(self):
        urls = super()._get_urls()
        for index, pattern in enumerate(urls):
            if isinstance(pattern, URLPattern) and pattern.name == "track_consent":
                fast = django_path(str(pattern.pattern), _fast_track_consent(pattern.callback), name=pattern.name)
                # Tried first: no other operation's route matches this one's paths.
                return [fast, *urls[:index], *urls[index + 1 :]]
        return urls


class _ExactJSONEncoder(NinjaJSONEncoder):
    """Timestamps keep their microseconds: an `as_of` taken from a `since` must name the same instant."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


class _Renderer(JSONRenderer):
    encoder_class = _ExactJSONEncoder


class LocalSwagger(Swagger):
    """Swagger UI from django-ninja's own static files: no CDN, no inline script (the CSP allows neither)."""

    template = "downstream/api_docs.html"


api = PortalApi(
    title="Creator Consent Portal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    renderer=_Renderer(),
    docs=LocalSwagger(settings={"persistAuthorization": False}),
)


@api.exception_handler(ApiProblem)
def _on_problem(request, exc: ApiProblem):
    response = problem_response(exc.status, exc.slug, exc.title, exc.detail, **exc.extra)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def _on_invalid(request, exc: ValidationError):
    errors = [{"field": _field_name(e.get("loc")), "message": str(e.get("msg", "invalid"))} for e in exc.errors]
    named = ", ".join(dict.fromkeys(e["field"] for e in errors)) or "body"
    return problem_response(422, "invalid-input", "Invalid input", f"Invalid: {named}.", errors=errors)


@api.exception_handler(AuthenticationError)
def _on_unauthenticated(request, exc):
    response = problem_response(
        401, "unauthenticated", "Unauthenticated", "Send a valid API token: Authorization: Bearer <token>."
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(HttpError)
def _on_http_error(request, exc: HttpError):
    return problem_response(exc.status_code, "http-error", "Error", str(exc))


@api.exception_handler(Http404)
def _on_not_found(request, exc):
    return problem_response(404, "not-found", "Not found", str(exc) or "Nothing here.")


@api.exception_handler(Exception)
def _on_error(request, exc):
    # The traceback is logged; the request's headers (and so its token) are not.
    logger.error("API error on %s %s", request.method, request.path, exc_info=exc)
    return problem_response(500, "server-error", "Server error", "Something went wrong on our side.")


# --- Authentication, body limit, rate limit -----------------------------------------------------


_last_cache_warning = 0.0
_redis_clients: dict[str, Any] = {}


def _redis_for_cache():
    """The Redis client behind the default cache, when it is Redis (one pool per location), else None."""
    config = settings.CACHES["default"]
    if not str(config["BACKEND"]).endswith("RedisCache"):
        return None
    location = str(config["LOCATION"])
    if location not in _redis_clients:
        import redis

        _redis_clients[location] = redis.Redis.from_url(location, socket_connect_timeout=0.5, socket_timeout=0.5)
    return _redis_clients[location]


def _count(key: str, window: int, amount: int) -> int:
    """Add `amount` to the window's counter; the new total."""
    client = _redis_for_cache()
    if client is None:
        cache.add(key, 0, timeout=window + 1)
        return cache.incr(key, amount)
    # One round trip: the key is per window, so refreshing its expiry on every claim is harmless.
    full_key = cache.make_and_validate_key(key)
    pipe = client.pipeline(transaction=False)
    pipe.incrby(full_key, amount)
    pipe.expire(full_key, window + 1)
    return int(pipe.execute()[0])


LEASE_SHARE = 100  # a process claims at most 1/100 of a client's limit at a time...
LEASE_MAX = 50  # ...and never more than this many requests


class QuotaLeases:
    """A fixed window per client, counted in the cache, claimed in leases.

    Counting each request in Redis costs a round trip per request, as much as the read it guards. So a
    process claims several requests of a client's window at once (INCRBY) and spends them locally: a
    client is never let through more than its limit per window, and is refused early by at most the unspent
    leases of the other processes (under 1% of the limit each, at most LEASE_MAX - 1). A limit under 200
    is counted request by request. Fails open: the cache down never blocks the API.
    """

    def __init__(self) -> None:
        # (client id, its limit) -> (window number, requests left): a changed limit starts a new lease at once.
        self._leases: dict[tuple[int, int], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every unspent lease (as when the counters in the cache are cleared)."""
        with self._lock:
            self._leases.clear()

    def take(self, client_id: int, limit: int, window: int, now: float) -> int | None:
        """Let one request through (None), or say how many seconds until the next window."""
        bucket = int(now // window)
        held = (client_id, limit)
        with self._lock:
            held_bucket, left = self._leases.get(held, (bucket, 0))
            if held_bucket == bucket and left > 0:
                self._leases[held] = (bucket, left - 1)
                return None
        size = max(1, min(LEASE_MAX, limit // LEASE_SHARE))
        total = _count(f"api-rate:{client_id}:{bucket}", window, size)
        granted = min(size, max(0, limit - (total - size)))
        if granted == 0:
            return max(1, math.ceil((bucket + 1) * window - now))
        with self._lock:
            self._leases[held] = (bucket, granted - 1)
        return None


_quota = QuotaLeases()


def _rate_limit(client_id: int, rate_limit: int | None) -> None:
    global _last_cache_warning
    now = time.time()
    limit = rate_limit or settings.API_RATE_LIMIT_REQUESTS
    try:
        retry_after = _quota.take(client_id, limit, settings.API_RATE_LIMIT_WINDOW_SECONDS, now)
    except Exception:
        if now - _last_cache_warning > 60:
            _last_cache_warning = now
            logger.warning("API rate limit not applied: the cache is unavailable", exc_info=True)
        return
    if retry_after is not None:
        raise RateLimited(retry_after)


def _check_body_size(request: HttpRequest) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.API_MAX_BODY_BYTES:
        raise ApiProblem(
            413,
            "too-large",
            "Request body too large",
            f"The body is {length} bytes; the limit is {settings.API_MAX_BODY_BYTES}.",
        )


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = (request.META.get("HTTP_AUTHORIZATION") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


class ClientToken(HttpBearer):
    """Bearer token -> the client. The token itself is never logged or stored."""

    def __call__(self, request: HttpRequest):
        # Before anything reads the body, so an oversized one is never parsed.
        _check_body_size(request)
        token = _bearer_token(request)
        return None if token is None else self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str):
        client = selectors.client_for_token_hash(hash_token(token))
        if client is None:
            return None
        _rate_limit(client.id, client.rate_limit)
        return client


api.auth = [ClientToken()]


def _client(request) -> AuthenticatedClient:
    return request.auth


def _purpose(request, slug: str):
    """The purpose, if this client may read it; any other slug, known or not, is outside its scope (403)."""
    found = _client(request).purpose(slug)
    if found is None:
        raise ApiProblem(403, "forbidden-purpose", "Purpose outside scope", f"This client may not read {slug!r}.")
    return found


def _client_purposes(client: AuthenticatedClient):
    return list(client.scope)


ERRORS = dict.fromkeys((401, 403, 404, 413, 422, 429), schemas.Problem)
READ_ERRORS = dict.fromkeys((401, 403, 404, 422, 429), schemas.Problem)


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(data, default=str, separators=(",", ":")), status=status, content_type="application/json"
    )


# --- Idempotency ---------------------------------------------------------------------------------------


def _idempotent(request: HttpRequest, produce: Callable[[], HttpResponse]) -> HttpResponse:
    """With an Idempotency-Key, the first answer is stored with the work it reports and replayed for retries."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return produce()
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise ApiProblem(
            422,
            "invalid-input",
            "Invalid input",
            "Invalid: Idempotency-Key. Use 1 to 200 printable characters.",
            errors=[{"field": "Idempotency-Key", "message": "1 to 200 printable characters"}],
        )
    client = _client(request)
    fingerprint = hashlib.sha256(
        (request.method or "").encode() + request.path.encode() + b"\n" + request.body
    ).hexdigest()
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    client_id=client.id, key=key, fingerprint=fingerprint, status_code=0, content_type="", body=b""
                )
        except IntegrityError:
            # Another request with this key committed first (PostgreSQL made us wait for it).
            existing = IdempotencyRecord.objects.get(client_id=client.id, key=key)
            if existing.fingerprint != fingerprint:
                raise ApiProblem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "This Idempotency-Key was used for a different request.",
                ) from None
            replay = HttpResponse(bytes(existing.body), status=existing.status_code, content_type=existing.content_type)
            replay["Idempotent-Replayed"] = "true"
            return replay
        response = produce()
        record.status_code = response.status_code
        record.content_type = response["Content-Type"]
        record.body = response.content
        record.save(update_fields=["status_code", "content_type", "body"])
    return response


# --- Endpoints ---------------------------------------------------------------------------------------------


@api.get("/client", response={200: schemas.ClientOut, **READ_ERRORS}, tags=["client"], summary="This client")
def who_am_i(request):
    """The calling client's name and scope."""
    client = _client(request)
    return {
        "name": client.name,
        "purposes": [p.slug for p in _client_purposes(client)],
        "can_write_manifests": client.can_write_manifests,
        "can_write_usage": client.can_write_usage,
    }


def _as_of(value: datetime.datetime | None) -> datetime.datetime | None:
    """The instant to answer for. The future is not known yet: a later instant is answered as of now
    (the response's as_of says which instant was answered)."""
    if value is None:
        return None
    now = timezone.now()
    try:
        moment = value.astimezone(datetime.UTC)
    except (OverflowError, ValueError):
        return now if value.year > 1 else datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return min(moment, now)


@api.get(
    "/tracks/{uuid}/consent",
    response={200: schemas.TrackConsentOut, **READ_ERRORS},
    tags=["consent"],
    summary="One track's consent",
)
def track_consent(
    request,
    uuid: UUID,
    as_of: schemas.AsOf | None = None,
    purpose: list[schemas.Slug] | None = Query(None),  # noqa: B008 -- ninja's way to declare a query list
):
    """The track's consent for this client's purposes, now or (`as_of`) at an instant, from the audit log."""
    client = _client(request)
    chosen = [_purpose(request, slug) for slug in dict.fromkeys(purpose)] if purpose else _client_purposes(client)
    return _track_consent_response(uuid, selectors.track_consent(track_uuid=uuid, purposes=chosen, as_of=_as_of(as_of)))


def _track_consent_response(track_uuid: UUID, state: selectors.TrackConsent | None) -> HttpResponse:
    if state is None:
        raise ApiProblem(404, "unknown-track", "Unknown track", f"No track {track_uuid}.")
    # Built directly (the hottest endpoint): the same body ninja would produce from TrackConsentOut.
    # orjson writes aware datetimes as isoformat() does, microseconds included.
    body = {
        "track": state.track,
        "isrc": state.isrc,
        "sha256": state.sha256,
        "status": state.status,
        "as_of": state.as_of,
        "purposes": {
            slug: {"allowed": s.allowed, "since": s.since, "event": s.event} for slug, s in state.purposes.items()
        },
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


def _fast_track_consent(ninja_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The plain read (GET, no query string) without ninja: token, scope and consent in one query, then the
    rate limit, then orjson. Anything else (as_of, purpose, a bad uuid or token, another method) goes to ninja's
    view of the same operation, which is what the OpenAPI schema describes; both answer the same."""

    @csrf_exempt
    def view(request: HttpRequest, uuid: str) -> HttpResponse:
        token = _bearer_token(request)
        if request.method != "GET" or request.META.get("QUERY_STRING") or token is None:
            return ninja_view(request, uuid=uuid)
        try:
            track_uuid = UUID(uuid)
            _check_body_size(request)
        except (ValueError, ApiProblem):
            return ninja_view(request, uuid=uuid)
        try:
            read = selectors.track_consent_for_token(token_hash=hash_token(token), track_uuid=track_uuid)
            if read is None:  # no active client holds this token: ninja answers the 401
                return ninja_view(request, uuid=uuid)
            _rate_limit(read.client_id, read.rate_limit)
            state = read.consent
            if state is None:  # not a track now: a deleted one is answered from the log
                state = selectors.track_consent(track_uuid=track_uuid, purposes=read.scope(), as_of=timezone.now())
            return _track_consent_response(track_uuid, state)
        except ApiProblem as problem:
            return _on_problem(request, problem)
        except Exception as error:
            return _on_error(request, error)

    return view


_CHECK_BODY = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckIn"}}},
    "required": True,
}


@api.post(
    "/consent/check",
    response={200: schemas.CheckOut, **ERRORS},
    tags=["consent"],
    summary="Check many tracks",
    openapi_extra={"requestBody": _CHECK_BODY},
)
def check(request):
    """Up to 10,000 ids, answered in the order asked. Unknown, unprocessed or ambiguous ids are denied."""
    purpose_slug, id_type, ids = _check_payload(request)
    purpose = _purpose(request, purpose_slug)
    judged = selectors.judge_ids(purpose=purpose, id_type=id_type, ids=ids)
    answer = judged.answer
    # Built directly: 10,000 results through pydantic, or json.dumps, would take most of the time.
    results = []
    for raw, key in zip(ids, judged.keys, strict=True):
        found = answer(key)
        results.append({"id": raw, "allowed": found.allowed, "track": found.track, "reason": found.reason})
    body = {"purpose": purpose.slug, "as_of": timezone.now(), "results": results}
    try:
        content = orjson.dumps(body)
    except TypeError:
        # An id echoed back with a lone surrogate, which orjson will not write; the json module escapes it.
        content = json.dumps(body, default=datetime.datetime.isoformat, separators=(",", ":")).encode()
    return HttpResponse(content, content_type="application/json")


_SLUG = re.compile(schemas.SLUG_PATTERN)
_ID_TYPES = typing.get_args(schemas.IdType)
_MISSING = object()


def _json_body(request: HttpRequest) -> Any:
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError:
        pass
    try:
        # What orjson refuses and the json module takes (a lone surrogate in a string) is still JSON.
        return json.loads(request.body)
    except ValueError as error:
        raise HttpError(400, f"Cannot parse request body ({error})") from None


def _check_payload(request: HttpRequest) -> tuple[str, str, list[str]]:
    """The CheckIn body (see schemas), validated by the same rules and answered with the same 422s as pydantic
    would, without building a pydantic object per id."""
    data = _json_body(request)
    if not isinstance(data, dict):
        data = {}
    errors: list[dict[str, str]] = []
    purpose, id_type, ids = (data.get(name, _MISSING) for name in ("purpose", "id_type", "ids"))
    if purpose is _MISSING:
        errors.append({"field": "purpose", "message": "Field required"})
    elif type(purpose) is not str:
        errors.append({"field": "purpose", "message": "Input should be a valid string"})
    elif not _SLUG.fullmatch(purpose):
        errors.append({"field": "purpose", "message": f"String should match pattern '{schemas.SLUG_PATTERN}'"})
    if id_type is _MISSING:
        errors.append({"field": "id_type", "message": "Field required"})
    elif id_type not in _ID_TYPES or type(id_type) is not str:
        allowed = ", ".join(f"'{t}'" for t in _ID_TYPES[:-1]) + f" or '{_ID_TYPES[-1]}'"
        errors.append({"field": "id_type", "message": f"Input should be {allowed}"})
    errors.extend(_id_list_errors(ids))
    if errors:
        named = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise ApiProblem(422, "invalid-input", "Invalid input", f"Invalid: {named}.", errors=errors)
    return purpose, id_type, ids


def _id_list_errors(ids: Any) -> list[dict[str, str]]:
    limit = settings.API_MAX_IDS
    if ids is _MISSING:
        return [{"field": "ids", "message": "Field required"}]
    if type(ids) is not list:
        return [{"field": "ids", "message": "Input should be a valid list"}]
    if not 1 <= len(ids) <= limit:
        bound = "at least 1 item" if not ids else f"at most {limit} items"
        return [{"field": "ids", "message": f"List should have {bound} after validation, not {len(ids)}"}]
    # The common case in C-speed passes over the list; the slow loop only to name what is wrong.
    if set(map(type, ids)) == {str} and min(map(len, ids)) >= 1 and max(map(len, ids)) <= schemas.ID_MAX_LENGTH:
        return []
    errors = []
    for index, value in enumerate(ids):
        if type(value) is not str:
            errors.append({"field": f"ids.{index}", "message": "Input should be a valid string"})
        elif not value:
            errors.append({"field": f"ids.{index}", "message": "String should have at least 1 character"})
        elif len(value) > schemas.ID_MAX_LENGTH:
            message = f"String should have at most {schemas.ID_MAX_LENGTH} characters"
            errors.append({"field": f"ids.{index}", "message": message})
    return errors


@api.get("/consent/changes", response={200: schemas.ChangesOut, **READ_ERRORS}, tags=["consent"], summary="Change feed")
def changes(
    request,
    purpose: schemas.Slug,
    after: schemas.Cursor | None = None,
    limit: int = Query(100, ge=1, le=1000),
):
    """Every change of `purpose` in commit order (grants, withdrawals, deletions); resume with `after`."""
    chosen = _purpose(request, purpose)
    try:
        position = feed.Position.parse(after) if after else feed.START
    except feed.BadCursor as error:
        raise ApiProblem(
            422, "invalid-input", "Invalid input", f"Invalid: after. {error}",
            errors=[{"field": "after", "message": str(error)}],
        ) from None  # fmt: skip
    page = selectors.changes(purpose=chosen, after=position, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return {
        "changes": [
            {
                "cursor": c.cursor,
                "track": c.track,
                "purpose": c.purpose,
                "allowed": c.allowed,
                "at": c.at,
                "event": c.event,
                "change": c.change,
            }
            for c in page
        ],
        "next": page[-1].cursor if page else str(position),
        "has_more": more,
    }


@api.post("/consent/acks", response={200: schemas.AckOut, **ERRORS}, tags=["consent"], summary="Acknowledge changes")
def acknowledge(request, payload: schemas.AckIn):
    """Every change of the purpose up to `cursor` is applied in the client's system."""
    purpose = _purpose(request, payload.purpose)
    try:
        position = feed.Position.parse(payload.cursor)
    except feed.BadCursor as error:
        raise ApiProblem(
            422, "invalid-input", "Invalid input", f"Invalid: cursor. {error}",
            errors=[{"field": "cursor", "message": str(error)}],
        ) from None  # fmt: skip

    def produce() -> HttpResponse:
        try:
            result = services.acknowledge(client=_client(request), purpose=purpose, position=position)
        except services.CursorAhead as error:
            raise ApiProblem(
                422, "invalid-input", "Invalid input", f"Invalid: cursor. {error.message}",
                errors=[{"field": "cursor", "message": error.message}],
            ) from None  # fmt: skip
        return _json(
            {
                "purpose": result.purpose,
                "cursor": result.cursor,
                "acknowledged_at": result.acknowledged_at.isoformat(),
                "withdrawals_acknowledged": result.withdrawals_acknowledged,
            }
        )

    return _idempotent(request, produce)


def _require(request, permission: str, what: str) -> None:
    if not getattr(_client(request), permission):
        raise ApiProblem(403, "not-permitted", "Not permitted", f"This client may not {what}.")


@api.post("/manifests", response={201: schemas.ManifestOut, **ERRORS}, tags=["manifests"], summary="Create a manifest")
def create_manifest(request, payload: schemas.ManifestIn):
    """A signed list of the tracks allowed for the purpose now, each citing the event that granted it."""
    _require(request, "can_write_manifests", "create manifests")
    purpose = _purpose(request, payload.purpose)

    def produce() -> HttpResponse:
        document = services.create_manifest(
            client=_client(request), purpose=purpose, name=payload.name, id_type=payload.id_type, ids=payload.ids
        )
        response = _manifest_response(document, status=201)
        response["Location"] = f"{request.path.rstrip('/')}/{document['id']}"
        return response

    return _idempotent(request, produce)


def _manifest_response(document: dict, status: int = 200) -> HttpResponse:
    # The exact canonical bytes: re-serialising could change what was hashed.
    from downstream.signing import canonical

    return HttpResponse(canonical(document), status=status, content_type="application/json")


def _manifest_for(request, manifest_id: str) -> Manifest:
    manifest = Manifest.objects.select_related("purpose").filter(pk=manifest_id).first()
    if manifest is None:
        raise ApiProblem(404, "unknown-manifest", "Unknown manifest", f"No manifest {manifest_id}.")
    if manifest.purpose.slug not in _client(request).purposes:
        raise ApiProblem(
            403,
            "forbidden-purpose",
            "Purpose outside scope",
            "This manifest is for a purpose outside this client's scope.",
        )
    return manifest


@api.get(
    "/manifests/{manifest_id}",
    response={200: schemas.ManifestOut, **READ_ERRORS},
    tags=["manifests"],
    summary="A manifest",
)
def get_manifest(request, manifest_id: schemas.ManifestIdStr):
    return _manifest_response(services.manifest_document(_manifest_for(request, manifest_id)))


@api.get(
    "/manifests/{manifest_id}/withdrawals",
    response={200: schemas.ManifestWithdrawalsOut, **READ_ERRORS},
    tags=["manifests"],
    summary="Tracks withdrawn since a manifest",
)
def manifest_withdrawals(request, manifest_id: schemas.ManifestIdStr):
    """The manifest's tracks withdrawn or deleted since it was made: what a training team must act on."""
    manifest = _manifest_for(request, manifest_id)
    return {
        "manifest": manifest.id,
        "purpose": manifest.purpose.slug,
        "withdrawals": [w.__dict__ for w in selectors.manifest_withdrawals(manifest)],
    }


@api.post(
    "/usage",
    response={201: schemas.UsageOut, 409: schemas.UsageConflict, **ERRORS},
    tags=["usage"],
    summary="Report use",
)
def report_usage(request, payload: schemas.UsageIn):
    """Record that this system used these tracks for the purpose now. Tracks not allowed now are refused (409)."""
    _require(request, "can_write_usage", "report usage")
    purpose = _purpose(request, payload.purpose)
    manifest = None
    if payload.manifest:
        manifest = _manifest_for(request, payload.manifest)
        if manifest.purpose_id != purpose.pk:
            raise ApiProblem(
                422, "invalid-input", "Invalid input", "Invalid: manifest. It is for another purpose.",
                errors=[{"field": "manifest", "message": "the manifest is for another purpose"}],
            )  # fmt: skip

    def produce() -> HttpResponse:
        result = services.record_usage(
            client=_client(request),
            purpose=purpose,
            manifest=manifest,
            id_type=payload.id_type,
            ids=payload.ids,
            description=payload.description,
        )
        body = {"purpose": purpose.slug, "recorded_at": result.recorded_at.isoformat(), "accepted": result.accepted}
        if not result.refused:
            return _json(body, status=201)
        return problem_response(
            409,
            "use-refused",
            "Some uses refused",
            f"{len(result.refused)} id(s) are not allowed for {purpose.slug} now; "
            f"{len(result.accepted)} use(s) recorded.",
            **{k: body[k] for k in ("accepted", "recorded_at")},
            refused=result.refused,
        )

    return _idempotent(request, produce)


@api.get(
    "/webhook", response={200: schemas.WebhookOut, **READ_ERRORS}, tags=["webhooks"], summary="This client's webhook"
)
def get_webhook(request):
    url = ApiClient.objects.filter(pk=_client(request).id).values_list("webhook_url", flat=True).first()
    return {"url": url or None, "secret": None}


@api.put("/webhook", response={200: schemas.WebhookOut, **ERRORS}, tags=["webhooks"], summary="Register a webhook")
def put_webhook(request, payload: schemas.WebhookIn):
    """Changes from now on are POSTed to this HTTPS endpoint, signed per Standard Webhooks (see the description)."""
    client = ApiClient.objects.get(pk=_client(request).id)
    secret = services.set_webhook(client=client, url=payload.url)
    return {"url": client.webhook_url, "secret": secret or None}


@api.delete("/webhook", response={204: None, **READ_ERRORS}, tags=["webhooks"], summary="Remove the webhook")
def delete_webhook(request):
    services.set_webhook(client=ApiClient.objects.get(pk=_client(request).id), url="")
    return Status(204, None)


@api.get("/keys", response=schemas.Jwks, auth=None, tags=["manifests"], summary="Manifest signing keys (JWKS)")
def keys(request):
    """Every public key that has signed a manifest (JWKS, RFC 7517); verify offline with these."""
    services.register_signing_key()
    return {"keys": list(SigningKey.objects.order_by("created_at").values_list("public_jwk", flat=True))}
