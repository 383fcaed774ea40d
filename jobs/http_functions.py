"""Azure Functions HTTP triggers of the HTTP API: a blueprint of their own, each function only wires its route to
``jobs.http_api.HttpApi`` (the logic, shared with ``python -m jobs run --http-port``).

Routes (under ``host.json``'s route prefix, ``api``) and auth levels, set on purpose:

| function | route | methods | auth |
|---|---|---|---|
| ``http_track`` | ``jobs`` | POST | function key: starts tracking, subscribes a callback |
| ``http_unsubscribe`` | ``jobs`` | DELETE (``?callbackUrl=`` or headers) | function key: the Logic Apps unsubscribe |
| ``http_job_status`` | ``jobs/{trackingId}`` | GET, DELETE | anonymous to the host: the URL's ``sig`` is checked |
| ``http_health`` | ``health`` | GET | function key: it names failing subscriptions |

The status route is anonymous because the URL handed out in ``Location`` must work for a caller without the key
it posted with (a Logic App's polling GET sends none); ``HttpApi`` refuses it without a valid ``sig``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from jobs.functions import get_tracker
from jobs.http_api import ApiRequest, ApiResponse, HttpApi

__all__ = ["api", "blueprint"]

blueprint = func.Blueprint()
api = HttpApi(get_tracker)


def _request(req: func.HttpRequest) -> ApiRequest:
    return ApiRequest(
        method=req.method.upper(),
        path=urlsplit(req.url).path,
        url=req.url,
        query=dict(req.params),
        headers={name.lower(): value for name, value in req.headers.items()},
        body=req.get_body() or b"",
    )


def _response(response: ApiResponse) -> func.HttpResponse:
    headers = dict(response.headers)
    content_type = headers.pop("Content-Type", "")
    mimetype, _, parameters = content_type.partition(";")
    charset = parameters.partition("charset=")[2].strip() or "utf-8"
    if content_type:  # the worker writes Content-Type from these two (its default is text/plain)
        return func.HttpResponse(body=response.body, status_code=response.status, headers=headers,
                                 mimetype=mimetype.strip(), charset=charset)
    return func.HttpResponse(body=response.body, status_code=response.status, headers=headers)


@blueprint.function_name("http_track")
@blueprint.route(route="jobs", methods=[func.HttpMethod.POST], auth_level=func.AuthLevel.FUNCTION)
def http_track(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/jobs: an intake body; 202 with the job's status URL in Location, or 400 problem+json."""
    return _response(api.post_job(_request(req)))


@blueprint.function_name("http_unsubscribe")
@blueprint.route(route="jobs", methods=[func.HttpMethod.DELETE], auth_level=func.AuthLevel.FUNCTION)
def http_unsubscribe(req: func.HttpRequest) -> func.HttpResponse:
    """DELETE /api/jobs (?callbackUrl=..., or the webhook action's headers): drops that subscription; 204 or 404."""
    return _response(api.unsubscribe(_request(req)))


@blueprint.function_name("http_job_status")
@blueprint.route(route="jobs/{trackingId}", methods=[func.HttpMethod.GET, func.HttpMethod.DELETE],
                 auth_level=func.AuthLevel.ANONYMOUS)
def http_job_status(req: func.HttpRequest) -> func.HttpResponse:
    """GET or DELETE the status URL (capability: its sig): 202 + Retry-After, 200 + event, 204, 401 or 404."""
    request = _request(req)
    tracking_id = req.route_params.get("trackingId", "")
    if request.method == "DELETE":
        return _response(api.delete_job(request, tracking_id))
    return _response(api.get_job(request, tracking_id))


@blueprint.function_name("http_health")
@blueprint.route(route="health", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
def http_health(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/health: 200, or 503 problem+json naming what does not work."""
    return _response(api.health(_request(req)))
