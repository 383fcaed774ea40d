"""Resource Manager's generic resource lists (Microsoft.Resources ``Resources_List`` and
``Resources_ListByResourceGroup``), as a watch expands a resource group or a subscription into its vaults:

    GET /subscriptions/{s}/resources?$filter=resourceType eq '<ns>/<type>' [or ...]&api-version=...
    GET /subscriptions/{s}/resourceGroups/{rg}/resources?$filter=...&api-version=...

Only ``resourceType eq '...'`` clauses joined by ``or`` are understood (what the tracker sends); another filter is
400 ``InvalidFilterInQueryString`` (the code ARM uses for a filter it cannot read; the text is not verified). Items
are ``GenericResourceExpanded`` as Azure writes them for a vault (``id``, ``name``, ``type``, ``location``, ``sku``,
``tags``), in the order the vaults were made, paged with ``$skiptoken`` behind ``nextLink``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote

from . import _arm as arm

PATH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)(?:/resourcegroups/(?P<rg>[^/]+))?/resources/?$", re.IGNORECASE)
# Microsoft.Resources api-versions of the resources lists (specification/resources/resource-manager/
# Microsoft.Resources/stable, a selection).
API_VERSIONS = ("2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-09-01", "2023-07-01",
                "2024-03-01")
_CLAUSE = re.compile(r"^resourceType\s+eq\s+'(?P<type>[^']+)'$", re.IGNORECASE)

#: (resource id, resource type) of every resource the list may show, in creation order
Listing = Callable[[], Iterable[tuple[str, str]]]


def matches(path: str) -> bool:
    return PATH.match(path) is not None


def handle(method: str, path: str, query: dict[str, str], base_url: str, page_size: int,
           listing: Listing) -> arm.Response:
    """One request on a resources list: one page."""
    match = PATH.match(path)
    assert match is not None
    version = query.get("api-version")
    if not version:
        return arm.missing_api_version()
    if version not in API_VERSIONS:
        return arm.error_response(
            400, "NoRegisteredProviderFound",
            f"No registered resource provider found for location 'global' and API version '{version}' for type "
            f"'resources'. The supported api-versions are '{', '.join(API_VERSIONS)}'.")
    if method not in ("GET", "HEAD"):
        return arm.method_not_allowed(method)
    types: set[str] | None = None
    text = query.get("$filter", "").strip()
    if text:
        types = set()
        for clause in re.split(r"\s+or\s+", text, flags=re.IGNORECASE):
            found = _CLAUSE.match(clause.strip())
            if not found:
                return arm.error_response(400, "InvalidFilterInQueryString",
                                          f"Invalid $filter '{text}': only resourceType eq '<type>' clauses.")
            types.add(found["type"].lower())
    sub, group = unquote(match["sub"]).lower(), unquote(match["rg"] or "").lower()
    prefix = f"/subscriptions/{sub}/" + (f"resourcegroups/{group}/" if group else "")
    chosen = [(rid, rtype) for rid, rtype in listing()
              if rid.lower().startswith(prefix) and (types is None or rtype.lower() in types)]
    try:
        start = int(query.get("$skiptoken") or 0)
    except ValueError:
        return arm.error_response(400, "InvalidSkipToken", "The $skiptoken is not valid.")
    size = max(1, page_size)
    page = chosen[start : start + size]
    payload: dict[str, object] = {"value": [_resource(rid, rtype) for rid, rtype in page]}
    if start + size < len(chosen):
        filter_part = f"&$filter={quote(text)}" if text else ""
        payload["nextLink"] = (f"{base_url}{path}?api-version={version}{filter_part}"
                               f"&$skiptoken={start + size}")
    return arm.json_response(200, payload)


def _resource(resource_id: str, resource_type: str) -> dict[str, object]:
    resource: dict[str, object] = {"id": resource_id, "name": resource_id.rstrip("/").rsplit("/", 1)[-1],
                                   "type": resource_type, "location": "westeurope", "tags": {}}
    if resource_type.lower() == "microsoft.recoveryservices/vaults":
        resource["sku"] = {"name": "RS0", "tier": "Standard"}
    return resource
