"""Pure pieces of the HTTP API: the public base URL behind front ends, the field a 400 names, and which callback
URLs are Logic Apps endpoints (they get ``application/json``)."""

from __future__ import annotations

import pytest

from jobs.flows.intake import IntakeRejected
from jobs.http_api import public_base_url, token_hash
from jobs.webhooks.sender import CONTENT_TYPE, LOGIC_APPS_CONTENT_TYPE, content_type_for, is_logic_apps_url


@pytest.mark.parametrize(("url", "headers", "expected"), [
    ("http://127.0.0.1:8080/api/jobs", {"host": "127.0.0.1:8080"}, "http://127.0.0.1:8080"),
    ("http://localhost/api/jobs", {}, "http://localhost"),
    # App Service: the worker sees an internal hop; the caller's host and https are forwarded
    ("http://10.0.0.4:80/api/jobs", {"host": "10.0.0.4", "x-forwarded-host": "tracker.azurewebsites.net",
                                     "x-forwarded-proto": "https"}, "https://tracker.azurewebsites.net"),
    ("http://tracker.azurewebsites.net/api/jobs", {"host": "tracker.azurewebsites.net", "x-arr-ssl": "2048|256"},
     "https://tracker.azurewebsites.net"),
    ("http://x/api/jobs", {"x-forwarded-host": "api.contoso.com, proxy.internal"}, "https://api.contoso.com"),
])
def test_the_status_url_base_is_what_the_caller_used(url, headers, expected):
    assert public_base_url(url, headers) == expected


@pytest.mark.parametrize(("reason", "field"), [
    ("jobId must be a GUID, got 'x'", "jobId"),
    ("vaultId is missing, and so is subscriptionId", "vaultId"),
    ("operation.status 'Weird' is not an operation status", "operation.status"),
    ("callbackUrl host 'a.example' is not listed in JOBS_CALLBACK_ALLOWED_HOSTS", "callbackUrl"),
    ("message is not JSON (or a job resource id)", "message"),
    ("'/subscriptions/x' is not a vault resource id", "message"),
])
def test_a_rejection_names_its_field(reason, field):
    assert IntakeRejected(reason).field == field


@pytest.mark.parametrize(("url", "logic_apps"), [
    ("https://prod-12.westeurope.logic.azure.com:443/workflows/abc/runs/x/actions/Wait/run"
     "?api-version=2016-10-01&sp=%2Fruns%2Fx&sv=1.0&sig=abc", True),
    ("https://prod-01.usgovvirginia.logic.azure.us/workflows/abc/triggers/manual/paths/invoke", True),
    # Standard: the app's own host, known by the Logic Apps SAS in the query
    ("https://my-la.azurewebsites.net:443/runtime/webhooks/workflow/scaleUnits/prod-00/workflows/abc/runs/x"
     "/actions/Wait/run?api-version=2022-05-01&sp=%2Fruns%2Fx&sv=1.0&sig=abc", True),
    ("https://hooks.example.com/in?sig=abc", False),
    ("https://logic.azure.com.evil.example/workflows", False),
    ("https://hooks.slack.com/services/T/B/secret", False),
])
def test_logic_apps_endpoints_get_application_json(url, logic_apps):
    assert is_logic_apps_url(url) is logic_apps
    assert content_type_for(url) == (LOGIC_APPS_CONTENT_TYPE if logic_apps else CONTENT_TYPE)


def test_only_a_hash_of_the_token_is_kept():
    assert token_hash("abc") != "abc" and len(token_hash("abc")) == 64
