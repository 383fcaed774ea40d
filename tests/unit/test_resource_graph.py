"""Resource Graph: the generic client (names in batches, each over its own subscriptions; pages; a pause stops the
rest) and the detector that asks it with each provider's own query, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs.arm import ArmClient, StaticToken
from jobs.arm.resource_graph import ResourceGraph
from jobs.domain.references import JobRef, VaultRef
from jobs.domain.tracked_item import IndexEntry
from jobs.providers import PROVIDERS
from jobs.providers.graph import GraphDetector
from tests.unit.test_providers import EXAMPLE_VAULT, Example

SUB = "11111111-2222-3333-4444-555555555555"
SUB2 = "22222222-2222-3333-4444-555555555555"
RS_VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v1"
Answer = tuple[int, dict[str, str], dict[str, Any]]


class GraphServer:
    """Answers ``POST /providers/Microsoft.ResourceGraph/resources`` with what ``answer(body)`` says; keeps every
    request body."""

    def __init__(self, answer: Callable[[dict[str, Any]], Answer]) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                status, headers, payload = answer(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[dict[str, Any]], Answer]], GraphServer]]:
    servers: list[GraphServer] = []

    def start(answer: Callable[[dict[str, Any]], Answer]) -> GraphServer:
        servers.append(GraphServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def graph(server: GraphServer, **kwargs: Any) -> ResourceGraph:
    return ResourceGraph(ArmClient(server.url, StaticToken("t")), **kwargs)


def rows(*ids: str) -> Answer:
    return 200, {}, {"data": [{"id": resource_id} for resource_id in ids]}


# -- the generic client ---------------------------------------------------------------------------------------------

def test_names_are_asked_in_sorted_batches_each_over_the_subscriptions_of_its_names(serve) -> None:
    server = serve(lambda body: rows(body["query"]))
    names = {"c": {SUB2}, "a": {SUB}, "b": {SUB, SUB2}, "d": {SUB}, "e": {SUB}}
    client = graph(server, ids_per_query=2)

    answered = list(client.ask(names, lambda chunk: "T | where name in~ (" + ",".join(chunk) + ")"))

    assert [body["query"] for body in server.requests] == [
        "T | where name in~ (a,b)", "T | where name in~ (c,d)", "T | where name in~ (e)"]
    assert [body["subscriptions"] for body in server.requests] == [[SUB, SUB2], [SUB, SUB2], [SUB]]
    assert [row["id"] for row in answered] == [body["query"] for body in server.requests]
    assert client.queries == 3
    assert server.requests[0]["options"] == {"$top": 1000, "resultFormat": "objectArray"}


def test_a_page_is_followed_by_its_skip_token(serve) -> None:
    def answer(body: dict[str, Any]) -> Answer:
        token = body["options"].get("$skipToken")
        return (200, {}, {"data": [{"id": "second"}]}) if token == "next" else \
            (200, {}, {"data": [{"id": "first"}], "$skipToken": "next"})

    server = serve(answer)
    assert [row["id"] for row in graph(server).ask({"a": {SUB}}, lambda chunk: "T")] == ["first", "second"]
    assert len(server.requests) == 2


def test_a_throttled_answer_stops_the_rest_and_pauses_until_its_retry_after(serve) -> None:
    now = [100.0]
    server = serve(lambda body: (429, {"Retry-After": "30"}, {"error": {"code": "RateLimiting", "message": "m"}}))
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])

    assert list(client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: "T")) == []
    assert len(server.requests) == 1  # the second batch was not asked
    now[0] += 29
    assert list(client.ask({"a": {SUB}}, lambda chunk: "T")) == [] and len(server.requests) == 1
    now[0] += 2
    list(client.ask({"a": {SUB}}, lambda chunk: "T"))
    assert len(server.requests) == 2


def test_a_spent_quota_pauses_after_the_answer_it_came_with(serve) -> None:
    now = [0.0]
    quota = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:05"}
    server = serve(lambda body: (200, quota, {"data": [{"id": "x"}]}))
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])

    assert [row["id"] for row in client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: "T")] == ["x"]
    assert len(server.requests) == 1
    now[0] += 5
    assert [row["id"] for row in client.ask({"a": {SUB}}, lambda chunk: "T")] == ["x"]


# -- the detector: each provider's query, through the one client ----------------------------------------------------

def entry(vault: VaultRef, job_id: str) -> IndexEntry:
    return IndexEntry(JobRef.create(vault, job_id).key, "job", vault.locator, vault.subscription_id,
                      datetime.now(UTC))


def test_each_provider_in_resource_graph_is_asked_its_own_query_and_reads_its_own_rows(serve) -> None:
    rs_vault, example_vault = VaultRef.from_resource_id(RS_VAULT), VaultRef.from_resource_id(EXAMPLE_VAULT)
    rs_ended, rs_running = "0f3c2b1a-0000-4000-8000-000000000001", "0f3c2b1a-0000-4000-8000-000000000002"
    example_ended = "0f3c2b1a-0000-4000-8000-000000000003"
    crr = entry(rs_vault.in_region("eastus2"), rs_ended)  # the same job id in the secondary region: not asked
    elsewhere = entry(VaultRef.from_resource_id(RS_VAULT[:-1] + "2"), rs_ended)  # and in another vault: not ended

    def answer(body: dict[str, Any]) -> Answer:
        if body["query"].startswith("RecoveryServicesResources"):
            return rows(f"{RS_VAULT}/backupJobs/{rs_ended}", f"{EXAMPLE_VAULT}/backupJobs/{example_ended}")
        if body["query"].startswith("ExampleResources"):
            return rows(f"{EXAMPLE_VAULT.upper()}/jobs/{example_ended}", f"{RS_VAULT}/jobs/{rs_running}")
        return 400, {}, {"error": {"code": "BadRequest", "message": "unknown table"}}

    server = serve(answer)
    entries = [entry(rs_vault, rs_ended), entry(rs_vault, rs_running), entry(example_vault, example_ended), crr,
               elsewhere]
    detector = GraphDetector(graph(server), (*PROVIDERS, Example))

    ended = detector.list_ended(entries)

    assert ended == {entries[0].tracking_id, entries[2].tracking_id}
    queries = [body["query"] for body in server.requests]
    assert len(queries) == 2 == detector.queries
    assert queries[0].startswith("RecoveryServicesResources") and f"('{rs_ended}', '{rs_running}')" in queries[0]
    assert queries[1] == Example.ended_jobs_query([example_ended])


def test_without_a_job_of_a_kind_in_resource_graph_nothing_is_asked(serve) -> None:
    server = serve(lambda body: rows())
    vault = VaultRef.from_resource_id(RS_VAULT).in_region("eastus2")
    operation = IndexEntry("op-x-12345678", "operation", RS_VAULT, SUB, datetime.now(UTC))
    detector = GraphDetector(graph(server))
    assert detector.list_ended([entry(vault, "0f3c2b1a-0000-4000-8000-000000000001"), operation]) == set()
    assert detector.list_ended([]) == set()
    assert server.requests == []
