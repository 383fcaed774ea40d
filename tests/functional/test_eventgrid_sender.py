"""EventGridSender against a topic stand-in on loopback over https: the managed-identity path with a fake
credential (the SDK's seam: an object with ``get_token``), a namespace topic, and how each answer is classified."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from devtools.webhook_receiver import WebhookReceiver
from jobs.config import ConfigError, Settings
from jobs.outputs.eventgrid import UNRESOLVED_KEY, EventGridSender

EVENT = {"specversion": "1.0", "id": "5f0c9a51-3f0e-5d59-9a4e-0f6f0c2a9b11", "source": "/subscriptions/x",
         "type": "BackupJob.Completed", "subject": "backupJobs/1", "time": "2026-11-22T04:07:11.605795Z",
         "datacontenttype": "application/json", "data": {"jobId": "1", "status": "Completed"}}


class FakeCredential:
    """A token credential as the SDK calls it: records the scopes asked for, hands out a fixed token."""

    def __init__(self, fail: bool = False) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.fail = fail

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise ClientAuthenticationError("ManagedIdentityCredential: no identity endpoint")
        return AccessToken("fake-identity-token", int(time.time()) + 3600)


@pytest.fixture
def topic(tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files[0])
    with WebhookReceiver(tls=tls_files) as receiver:
        yield receiver


def _endpoint(topic: WebhookReceiver) -> str:
    return f"https://127.0.0.1:{topic.port}/api/events"


def test_the_managed_identity_path_sends_a_bearer_token_for_event_grid(topic):
    credential = FakeCredential()
    outcome = EventGridSender(_endpoint(topic), credential=credential).send(EVENT)
    assert outcome.delivered, outcome
    assert credential.scopes == [("https://eventgrid.azure.net/.default",)]
    (request,) = topic.requests
    assert request.headers["authorization"] == "Bearer fake-identity-token"
    assert "aeg-sas-key" not in request.headers
    assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
    assert request.json() == [EVENT]


def test_an_identity_without_a_token_is_retried_and_nothing_is_sent(topic):
    outcome = EventGridSender(_endpoint(topic), credential=FakeCredential(fail=True)).send(EVENT)
    assert not outcome.delivered and outcome.retry_in == 0.0
    assert outcome.reason == "no token for Event Grid: ClientAuthenticationError"
    assert topic.requests == []


def test_a_namespace_topic_gets_the_batch_on_its_publish_path_with_the_key(topic):
    endpoint = f"https://127.0.0.1:{topic.port}"
    outcome = EventGridSender(endpoint, key="ns-key", namespace_topic="results").send(EVENT)
    assert outcome.delivered, outcome
    (request,) = topic.requests
    assert request.path.startswith("/topics/results:publish?api-version=")
    assert request.headers["authorization"] == "SharedAccessKey ns-key"
    assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
    assert [event["id"] for event in request.json()] == [EVENT["id"]]


@pytest.mark.parametrize(("status", "retry_in", "reason"), [
    (503, 7.0, "HTTP 503"),
    (429, 7.0, "HTTP 429"),
    (403, 7.0, "HTTP 403"),  # a new "EventGrid Data Sender" assignment takes minutes: retried
    (401, 0.0, "HTTP 401: refused"),
    (400, None, "HTTP 400: permanent failure"),
    (404, None, "HTTP 404: permanent failure"),
    (413, None, "HTTP 413: permanent failure"),
])
def test_each_answer_is_classified_like_a_webhook_delivery(topic, status, retry_in, reason):
    topic.respond_with(status, retry_after=7)
    outcome = EventGridSender(_endpoint(topic), key="k").send(EVENT)
    assert (outcome.delivered, outcome.retry_in, outcome.reason) == (False, retry_in, reason)
    assert len(topic.requests) == 1  # one request per attempt: the SDK's own retries are off


def test_an_unresolved_key_is_never_replaced_by_the_identity(topic):
    sender = EventGridSender(_endpoint(topic), credential=FakeCredential(), key_problem="unresolved")
    outcome = sender.send(EVENT)
    assert (outcome.delivered, outcome.retry_in, outcome.reason) == (False, 0.0, UNRESOLVED_KEY)
    assert topic.requests == []


def test_settings_of_the_topic():
    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    with pytest.raises(ConfigError, match="must be https"):
        Settings.from_env({**base, "JOBS_EVENTGRID_TOPIC_ENDPOINT": "http://topic.example.com/api/events"})
    with pytest.raises(ConfigError, match="without JOBS_EVENTGRID_TOPIC_ENDPOINT"):
        Settings.from_env({**base, "JOBS_EVENTGRID_NAMESPACE_TOPIC": "results"})
    with pytest.raises(ConfigError, match="not a namespace topic name"):
        Settings.from_env({**base, "JOBS_EVENTGRID_TOPIC_ENDPOINT": "https://ns.example.com",
                           "JOBS_EVENTGRID_NAMESPACE_TOPIC": "a/b"})
    loopback = Settings.from_env({**base, "JOBS_EVENTGRID_TOPIC_ENDPOINT": "http://127.0.0.1:9/api/events"})
    assert loopback.eventgrid_endpoint == "http://127.0.0.1:9/api/events"
    assert EventGridSender.from_settings(Settings.from_env(base)) is None
    unresolved = Settings.from_env({**base, "JOBS_EVENTGRID_TOPIC_ENDPOINT": "https://t.example.com/api/events",
                                    "JOBS_EVENTGRID_KEY": "@Microsoft.KeyVault(VaultName=kv;SecretName=eg-key)"})
    assert unresolved.eventgrid_key is None
    assert "JOBS_EVENTGRID_KEY is an unresolved Key Vault reference (secret eg-key in vault kv)" in (
        unresolved.eventgrid_key_problem or "")
    assert "@Microsoft.KeyVault" not in repr(unresolved)
