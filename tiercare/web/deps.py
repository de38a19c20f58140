"""FastAPI dependencies: database session, current actor (token or session cookie), paging."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import Actor, actor_for, actor_for_token
from tiercare.config import Settings
from tiercare.errors import NotFoundError
from tiercare.paging import MAX_PAGE

SESSION_COOKIE = "tiercare_session"
T = TypeVar("T")
_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/v1/auth/token")


def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


def _pending(session: Session) -> bool:
    """True while ending the session needs the database (a transaction or unsaved changes)."""
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request: committed when the handler succeeds, rolled back otherwise.

    Opening a session does no I/O (its connection is taken at the first statement), so that
    happens on the event loop; the commit (or rollback) and the close, which do I/O, run
    together in one call on a worker thread. Every such call costs the event loop a thread
    hand-off, and the event loop is what limits a worker under load, so a session whose
    handler already ended its transaction is closed in place.
    """
    session = request.app.state.sessions()
    try:
        yield session
    except BaseException:
        if _pending(session):
            await run_in_threadpool(_rollback_and_close, session)
        else:
            session.close()
        raise
    if _pending(session):
        await run_in_threadpool(_commit_and_close, session)
    else:
        session.close()


# scope="function": commit before the response is sent, so a client never sees a success
# whose transaction then fails, and a redirect-after-POST always reads the committed state.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]

# The paging parameters of every list endpoint (each endpoint keeps its own default limit).
Offset = Annotated[int, Query(ge=0, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")]


def cookie_serializer(settings: Settings) -> URLSafeTimedSerializer:
    """Signs and checks the session cookie."""
    return URLSafeTimedSerializer(settings.secret_key, salt="tiercare-session")


def user_from_cookie(request: Request, session: Session) -> User | None:
    """The logged-in user of a page request, or None."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    settings: Settings = request.app.state.settings
    try:
        data = cookie_serializer(settings).loads(raw, max_age=settings.session_hours * 3600)
    except (BadSignature, SignatureExpired):
        return None
    user = session.get(User, data.get("uid"))
    return user if user is not None and user.active else None


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authenticate(request: Request, session: Session,
                 credentials: HTTPAuthorizationCredentials | None) -> Actor:
    """The caller: a bearer token (API) or the session cookie (pages calling the API).

    Raises
    ------
    HTTPException
        401 for a missing, unknown or expired credential.
    """
    if credentials is not None:
        try:
            return actor_for_token(session, credentials.credentials)
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid token: {exc}",
                                headers={"WWW-Authenticate": "Bearer"}) from exc
    user = user_from_cookie(request, session)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated",
                            headers={"WWW-Authenticate": "Bearer"})
    return actor_for(session, user)


def get_actor(request: Request, session: SessionDep, credentials: BearerDep) -> Actor:
    """Dependency: the authenticated caller (see :func:`authenticate`)."""
    return authenticate(request, session, credentials)


async def run_authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None,
                            work: Callable[[Session, Actor], T]) -> T:
    """Authenticate and run ``work(session, actor)`` in one transaction on one worker thread.

    For the hottest write path (booking), where the dependency chain of
    :data:`SessionDep` and :data:`ActorDep` would cost three thread hand-offs per request:
    here the session is opened, the caller authenticated, the work done and the transaction
    committed (rolled back on any error) and closed in a single one.
    """
    def run() -> T:
        session = request.app.state.sessions()
        try:
            result = work(session, authenticate(request, session, credentials))
        except BaseException:
            _rollback_and_close(session)
            raise
        _commit_and_close(session)
        return result

    return await run_in_threadpool(run)


def _authenticate_only(request: Request,
                       credentials: HTTPAuthorizationCredentials | None) -> None:
    """Authenticate the caller and end the session (HTTPException 401 when that fails)."""
    session = request.app.state.sessions()
    try:
        authenticate(request, session, credentials)
    finally:
        _rollback_and_close(session)


class AuthenticateBeforeRefusingRoute(APIRoute):
    """A route whose handler authenticates in :func:`run_authenticated`, yet answers 401 first.

    FastAPI validates the request body before the handler runs, so an unauthenticated caller
    with a bad body would get 422 (and learn what the endpoint expects) where the routes that
    depend on :data:`ActorDep` answer 401. Here, only when validation fails, the caller is
    authenticated (one thread hand-off): without valid credentials the answer is 401, with
    them the validation error stands. A valid request takes the handler's path unchanged.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the usual handler so that a validation error first authenticates the caller."""
        handler = super().get_route_handler()

        async def authenticate_before_refusing(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                await run_in_threadpool(_authenticate_only, request, await _bearer(request))
                raise

        return authenticate_before_refusing


ActorDep = Annotated[Actor, Depends(get_actor)]


def require_editor(actor: ActorDep) -> Actor:
    """Only roles that may change the registry."""
    if not actor.can_edit_registry:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{actor.role}' may not change this")
    return actor


EditorDep = Annotated[Actor, Depends(require_editor)]
