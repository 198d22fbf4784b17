"""The dashboard's pages. Each page is rendered from the services (the same views the API
answers) and embeds them as JSON; its script keeps it live through the API."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from legato import __version__
from legato.http.session import SESSION_COOKIE, session_of
from legato.model.errors import Forbidden, InvalidInput, LegatoError, NotFound, Unauthorized
from legato.model.filters import RunFilter
from legato.model.states import RunStatus
from legato.service.principal import Principal
from legato.service.services import Services
from legato.service.sessions import Session
from legato.web.forms import input_fields

__all__ = ["mount", "router"]

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
_FORM_LIMIT = 16_384


def mount(app: FastAPI) -> None:
    """Serve the dashboard (pages and static files) under ``/ui``."""
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.include_router(router)


def _services(request: Request) -> Services:
    return request.app.state.legato  # type: ignore[no-any-return]


async def _session(request: Request) -> Session | None:
    try:
        return await session_of(request)
    except Unauthorized:
        return None


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)


def _page(
    request: Request,
    name: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    p = session.principal if session else None
    return templates.TemplateResponse(
        request,
        name,
        {
            "session": session,
            "principal": p,
            "can_act": p is not None and p.role in ("operator", "admin"),
            "version": __version__,
            **context,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def _same_origin(request: Request) -> None:
    """Forms are posted by the dashboard's own pages only (besides SameSite=Strict)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if urlsplit(origin).netloc != request.headers.get("host", ""):
            raise Forbidden("cross-site form post refused", code="csrf_failed")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        raise InvalidInput("form too large")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


def _set_cookie(request: Request, response: Response, token: str) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=_services(request).sessions.lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def _check_csrf(session: Session, form: dict[str, str]) -> None:
    import hmac

    if not hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


# -- sign-in ----------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _page(request, "login.html", None, next=_safe_next(next), error=None, method="key")


@router.post("/login")
async def login(request: Request) -> Response:
    _same_origin(request)
    form = await _form(request)
    services = _services(request)
    method = form.get("method", "key")
    target = _safe_next(form.get("next"))
    try:
        if method == "password":
            principal = await services.tenancy.identity.authenticate_password(
                form.get("username", ""), form.get("password", "")
            )
        else:
            principal = await services.tenancy.authenticate(form.get("key", "").strip() or None)
        token, _ = await services.sessions.issue(principal)
    except LegatoError as exc:  # bad credentials, or too many attempts
        return _page(
            request,
            "login.html",
            None,
            status_code=exc.status,
            next=target,
            error=exc.detail,
            method=method,
            username=form.get("username", ""),
        )
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    _same_origin(request)
    session = await _session(request)
    if session is not None:
        _check_csrf(session, await _form(request))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/namespace")
async def switch_namespace(request: Request) -> Response:
    _same_origin(request)
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    form = await _form(request)
    _check_csrf(session, form)
    token = await _services(request).sessions.switch(session, form.get("namespace", ""))
    response = RedirectResponse("/ui", status_code=303)
    _set_cookie(request, response, token)
    return response


# -- runs -------------------------------------------------------------------------------------


def _timestamp(value: str | None, field: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidInput(
            f"{field} is not a date and time", errors=[{"path": field, "message": "not a date"}]
        ) from None


@router.get("")
async def runs_page(request: Request) -> Response:
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    services, p, q = _services(request), session.principal, request.query_params
    find = (q.get("find") or "").strip()
    error = None
    if find:  # an id, a uuid or an external id names one run: go to it
        found = await services.dashboard.find_run(p, find)
        if found is not None:
            return RedirectResponse(f"/ui/runs/{found}", status_code=303)
        error = f"no run has the id, UUID or external id {find!r}"
    statuses = [s for s in q.getlist("status") if s in RunStatus.__members__]
    labels = {}
    for item in q.getlist("label"):
        key, sep, value = item.partition("=")
        if sep and key:
            labels[key] = value
    workflow = q.get("workflow") or ""
    requestor = q.get("requestor") or ""
    created_after, created_before = q.get("created_after") or "", q.get("created_before") or ""
    filters = {
        "status": statuses,
        "workflow": workflow,
        "requestor": requestor,
        "label": [f"{k}={v}" for k, v in labels.items()],
        "created_after": created_after,
        "created_before": created_before,
    }
    page: dict[str, Any] = {"runs": [], "next_page_token": None}
    try:
        flt = RunFilter(
            namespace_id=p.namespace_id,
            statuses=statuses,
            workflow=workflow or None,
            requestor=requestor or None,
            labels=labels,
            created_after=_timestamp(created_after, "created_after"),
            created_before=_timestamp(created_before, "created_before"),
        )
        page = await services.runs.list_runs(p, flt, PAGE_SIZE, q.get("page_token"))
    except InvalidInput as exc:
        error = exc.detail
    older = None
    if page.get("next_page_token"):
        kept = [(k, v) for k, v in q.multi_items() if k not in ("page_token", "find")]
        older = "/ui?" + urlencode([*kept, ("page_token", page["next_page_token"])])
    return _page(
        request,
        "runs.html",
        session,
        older=older,
        page=page,
        filters=filters,
        error=error,
        statuses=list(RunStatus.__members__),
        page_size=PAGE_SIZE,
    )


@router.get("/counts")
async def status_counts(request: Request) -> Response:
    """Counts by status for the runs page's chips (loaded after the page, capped)."""
    session = await _session(request)
    if session is None:
        raise Unauthorized("sign in to the dashboard")
    from legato.http.responses import JSONResponse

    return JSONResponse(await _services(request).dashboard.counts_by_status(session.principal))


@router.get("/runs/{run_ref}")
async def run_page(request: Request, run_ref: str) -> Response:
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    services, p = _services(request), session.principal
    ref: int | str = int(run_ref) if run_ref.isdigit() and len(run_ref) < 19 else run_ref
    try:
        snap = await services.status.snapshot(p, ref, services.status.run(p))
        # the run as GET /api/v1/runs/{id} answers it, encoded once per version of the run
        encoded = await services.status.rendered(snap, "dashboard", _script_json)
    except NotFound as exc:
        return _page(request, "not_found.html", session, status_code=404, detail=exc.detail)
    run = orjson.loads(encoded)
    graph = await _graph_of(services, p, run["workflow"], run["workflow_version"])
    can_act = p.role in ("operator", "admin")
    data = b"".join(
        [b'{"run":', encoded, b',"graph":', _script_json(graph), b',"can_act":',
         b"true" if can_act else b"false", b"}"]
    )  # fmt: skip
    return _page(
        request,
        "run.html",
        session,
        run=run,
        page_data=Markup(data.decode()),
        title=f"Run {run['id']}",
    )


def _script_json(value: Any) -> bytes:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left as such."""
    return (
        orjson.dumps(value)
        .replace(b"<", b"\\u003c")
        .replace(b">", b"\\u003e")
        .replace(b"&", b"\\u0026")
    )


#: DAG nodes per (namespace, workflow, version): a version's definition never changes
_graphs: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
_GRAPHS_KEPT = 256


async def _graph_of(
    services: Services, p: Principal, workflow: str, version: int
) -> list[dict[str, Any]]:
    key = (p.namespace_id, workflow, version)
    found = _graphs.get(key)
    if found is None:
        try:
            definition = (await services.workflows.get(p, workflow, version)).get("definition")
        except NotFound:
            definition = None
        found = _graph(definition or {})
        if len(_graphs) >= _GRAPHS_KEPT:
            _graphs.clear()
        _graphs[key] = found
    return found


def _graph(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-level steps of a definition as DAG nodes: key, name and needs."""
    nodes = []
    for step in definition.get("steps") or []:
        if isinstance(step, dict) and step.get("id"):
            nodes.append(
                {
                    "key": step["id"],
                    "name": step.get("name") or step["id"],
                    "needs": list(step.get("needs") or []),
                }
            )
    return nodes


# -- workflows --------------------------------------------------------------------------------


@router.get("/workflows")
async def workflows_page(request: Request) -> Response:
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    services, p = _services(request), session.principal
    workflows = await services.workflows.list(p)
    figures = await services.dashboard.workflow_figures(p)
    return _page(request, "workflows.html", session, workflows=workflows, figures=figures)


@router.get("/workflows/{name}")
async def workflow_page(request: Request, name: str, version: int | None = None) -> Response:
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    services, p = _services(request), session.principal
    try:
        workflow = await services.workflows.get(p, name, version)
        latest = await services.workflows.get(p, name)
    except NotFound as exc:
        return _page(request, "not_found.html", session, status_code=404, detail=exc.detail)
    recent = await services.runs.list_runs(
        p, RunFilter(namespace_id=p.namespace_id, workflow=name), 20, None
    )
    definition = workflow.get("definition") or {}
    return _page(
        request,
        "workflow.html",
        session,
        workflow=workflow,
        versions=list(range(latest["version"], 0, -1)),
        fields=input_fields(definition),
        graph=_graph(definition),
        recent=recent["runs"],
        title=f"Workflow {name}",
    )


# -- operations -------------------------------------------------------------------------------


@router.get("/operations")
async def operations_page(request: Request) -> Response:
    session = await _session(request)
    if session is None:
        return _to_sign_in(request)
    services, p = _services(request), session.principal
    limits: list[dict[str, Any]] = []
    try:
        limits = await services.tenancy.namespaces(p)
    except LegatoError:  # only admins read limits
        limits = []
    deliveries: dict[str, Any] = {"deliveries": []}
    try:
        deliveries = await services.webhooks.deliveries(p, status="FAILED", page_size=50)
    except LegatoError:
        pass
    work = await services.dashboard.work_of_workers(p)
    workers = [
        {**w, **work.get(w["id"], {"slots_in_use": 0, "running": []})}
        for w in await services.workers()
    ]
    return _page(
        request,
        "operations.html",
        session,
        workers=workers,
        limits=limits,
        queues=await services.dashboard.queue_depth(p),
        deliveries=deliveries.get("deliveries", []),
        now=time.time(),
        title="Operations",
    )
