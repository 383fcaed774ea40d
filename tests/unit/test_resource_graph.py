"""Resource Graph: the generic client (names in batches, each over its own subscriptions; pages; a pause stops the
rest) and the detector that asks it with each provider's own query, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devtools.simulator import BackupSimulator, JobScript
from jobs.arm import ArmClient, StaticToken
from jobs.arm.resource_graph import GraphPause, Question, ResourceGraph
from jobs.domain.references import JobRef, VaultRef
from jobs.domain.tracked_item import IndexEntry
from jobs.providers import PROVIDERS
from jobs.providers.graph import DetectorRound, GraphDetector
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

    answered = client.ask(names, lambda chunk: "T | where name in~ (" + ",".join(chunk) + ")").rows

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
    assert [row["id"] for row in graph(server).ask({"a": {SUB}}, lambda chunk: "T").rows] == ["first", "second"]
    assert len(server.requests) == 2


def test_a_throttled_answer_stops_the_rest_and_pauses_until_its_retry_after(serve) -> None:
    now = [100.0]
    server = serve(lambda body: (429, {"Retry-After": "30"}, {"error": {"code": "RateLimiting", "message": "m"}}))
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])

    answer = client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: "T")
    assert answer.rows == [] and answer.answered == frozenset() and answer.unanswered == {"a", "b"}
    assert answer.stopped == GraphPause("throttled", 130.0) == client.pause
    assert len(server.requests) == 1  # the second batch was not asked
    now[0] += 29
    answer = client.ask({"a": {SUB}}, lambda chunk: "T")
    assert answer.rows == [] and len(server.requests) == 1 and answer.stopped == GraphPause("throttled", 130.0)
    now[0] += 2
    assert client.pause is None and client.last_pause == GraphPause("throttled", 130.0)
    client.ask({"a": {SUB}}, lambda chunk: "T")
    assert len(server.requests) == 2


def test_a_spent_quota_pauses_after_the_answer_it_came_with(serve) -> None:
    now = [0.0]
    quota = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:05"}
    server = serve(lambda body: (200, quota, {"data": [{"id": "x"}]}))
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])

    answer = client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: "T")
    assert [row["id"] for row in answer.rows] == ["x"] and answer.answered == {"a"} and answer.unanswered == {"b"}
    assert answer.stopped == GraphPause("quota", 5.0) == client.pause
    assert len(server.requests) == 1
    now[0] += 5
    assert client.pause is None
    assert [row["id"] for row in client.ask({"a": {SUB}}, lambda chunk: "T").rows] == ["x"]


# -- the quota: rotation, so the tail is asked too ------------------------------------------------------------------

class Quota:
    """Resource Graph's per-user quota on the test's clock: ``per_window`` queries per ``window`` seconds, reported
    in ``x-ms-user-quota-remaining`` / ``-resets-after`` on every answer; past it, a 429 with Retry-After. Each
    query answers one row per quoted name (``'...'``) or, failing that, per comma-separated name after ``|``."""

    def __init__(self, now: list[float], per_window: int, window: float = 5.0) -> None:
        self.now, self.per_window, self.window = now, per_window, window
        self.start, self.used, self.throttled = float("-inf"), 0, 0

    def __call__(self, body: dict[str, Any]) -> Answer:
        if self.now[0] - self.start >= self.window:
            self.start, self.used = self.now[0], 0
        self.used += 1
        resets = self.window - (self.now[0] - self.start)
        headers = {"x-ms-user-quota-remaining": str(max(0, self.per_window - self.used)),
                   "x-ms-user-quota-resets-after": f"00:00:{resets:02.0f}"}
        if self.used > self.per_window:
            self.throttled += 1
            return 429, {**headers, "Retry-After": f"{resets:.0f}"}, {"error": {"code": "RateLimiting", "message": "m"}}
        return 200, headers, {"data": [{"id": name} for name in names_in(body["query"])]}


def names_in(query: str) -> list[str]:
    quoted = re.findall(r"'([^']*)'", query.split("| where name in~ (")[-1].split(")")[0])
    return quoted or query.rpartition("|")[2].split(",")


def test_a_quota_for_k_chunks_a_window_asks_all_n_chunks_within_ceil_n_over_k_windows(serve) -> None:
    now = [1000.0]
    per_window, size, chunks = 3, 2, 8  # 3 queries a window; 8 chunks of 2 names
    quota = Quota(now, per_window)
    server = serve(quota)
    client = graph(server, ids_per_query=size, monotonic=lambda: now[0])
    names = {f"n{n:02d}": {SUB} for n in range(size * chunks)}
    rounds = math.ceil(chunks / per_window)

    def one_window() -> set[str]:
        answer = client.ask(names, lambda chunk: "T|" + ",".join(chunk))
        now[0] += 5.0  # the next round: the quota has come back
        assert {row["id"] for row in answer.rows} == answer.answered  # each answered name's row, and only those
        return set(answer.answered)

    for _ in range(3):  # lap after lap, any ceil(N/K) windows in a row ask every name
        assert set().union(*(one_window() for _ in range(rounds))) == set(names)
    assert quota.throttled == 0  # the client stops at remaining 0, so Resource Graph never had to say 429
    assert all(len(body["query"].split(",")) == size for body in server.requests)  # chunks stay whole while the
    assert len({body["query"] for body in server.requests}) == chunks  # names stay: the same 8 chunks, no others


def test_the_rotation_resumes_at_the_chunk_of_the_stop_when_names_come_and_go(serve) -> None:
    now = [0.0]
    server = serve(Quota(now, per_window=2))
    client = graph(server, ids_per_query=2, monotonic=lambda: now[0])
    names = {name: {SUB} for name in "abcdefgh"}

    assert client.ask(names, lambda chunk: "T|" + ",".join(chunk)).answered == set("abcd")
    now[0] += 5
    del names["e"]  # ended: the place ("e") is gone; the chunk holding the next name is asked first
    names["b2"] = {SUB}  # new, behind the place: on the next lap
    assert client.ask(names, lambda chunk: "T|" + ",".join(chunk)).answered == set("dfgh")
    now[0] += 5
    assert client.ask(names, lambda chunk: "T|" + ",".join(chunk)).answered == {"a", "b", "b2", "c"}


def test_a_chunk_cut_short_between_pages_is_asked_again_first(serve) -> None:
    now = [0.0]

    def answer(body: dict[str, Any]) -> Answer:
        if body["options"].get("$skipToken"):
            return 429, {"Retry-After": "5"}, {"error": {"code": "RateLimiting", "message": "m"}}
        return 200, {}, {"data": [{"id": body["query"]}], "$skipToken": "more"}

    server = serve(answer)
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])
    first = client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: chunk[0])
    assert first.rows == [{"id": "a"}]  # the first page's rows are facts all the same
    assert first.answered == frozenset() and first.unanswered == {"a", "b"} and first.stopped is not None
    now[0] += 5
    client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: chunk[0])
    assert [body["query"] for body in server.requests if not body["options"].get("$skipToken")] == ["a", "a"]


def test_questions_of_one_ask_share_the_rotation_so_none_is_starved(serve) -> None:
    now = [0.0]
    server = serve(Quota(now, per_window=2))
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])
    first = Question({name: {SUB} for name in "abc"}, lambda chunk: "A|" + chunk[0], "first")
    second = Question({name: {SUB} for name in "xy"}, lambda chunk: "B|" + chunk[0], "second")
    answered: list[tuple[set[str], set[str]]] = []
    for _ in range(3):  # 5 chunks, 2 a window: all within 3 windows, the second question's too
        answers = client.ask_many([second, first])  # their order in the call does not matter: keys order them
        answered.append((set(answers[0].answered), set(answers[1].answered)))
        now[0] += 5
    assert answered == [(set(), {"a", "b"}), ({"x"}, {"c"}), ({"y"}, {"a"})]
    with pytest.raises(ValueError):
        client.ask_many([first, first])


@pytest.mark.parametrize(("status", "headers", "reason", "seconds"), [
    (429, {"Retry-After": "30"}, "throttled", 30.0),
    (200, {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:04"}, "quota", 4.0),
    (403, {}, "refused", 300.0),
    (503, {}, "unreachable", 0.0),
])
def test_the_client_says_why_it_paused_and_until_when(serve, status: int, headers: dict[str, str], reason: str,
                                                      seconds: float) -> None:
    now = [50.0]
    payload = {"data": []} if status == 200 else {"error": {"code": "Code", "message": "m"}}
    server = serve(lambda body: (status, headers, payload))
    client = graph(server, ids_per_query=1, monotonic=lambda: now[0])
    assert client.pause is None and client.last_pause is None

    answer = client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: "T")

    assert answer.stopped == GraphPause(reason, 50.0 + seconds) == client.last_pause
    assert client.pause == (answer.stopped if seconds else None)  # "unreachable" pauses no longer than the round
    assert len(server.requests) == 1
    assert answer.answered == ({"a"} if status == 200 else frozenset())


def test_an_unreachable_resource_graph_stops_the_round(serve) -> None:
    server = serve(lambda body: rows())
    client = graph(server, ids_per_query=1)
    server.close()  # nothing listens on the port any more
    answer = client.ask({"a": {SUB}, "b": {SUB}}, lambda chunk: "T")
    assert answer.stopped is not None and answer.stopped.reason == "unreachable" and client.queries == 1


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


def rs_entries(count: int) -> list[IndexEntry]:
    vault = VaultRef.from_resource_id(RS_VAULT)
    return [entry(vault, f"0f3c2b1a-0000-4000-8000-{n:012d}") for n in range(count)]


def test_the_detector_says_each_round_how_many_jobs_were_answered_and_why_not_all(serve) -> None:
    now = [0.0]
    server = serve(Quota(now, per_window=2))
    entries = rs_entries(10)  # 5 chunks of 2 job ids
    crr = entry(VaultRef.from_resource_id(RS_VAULT).in_region("eastus2"), "0f3c2b1a-0000-4000-8000-000000000001")
    detector = GraphDetector(graph(server, ids_per_query=2, monotonic=lambda: now[0]))
    assert detector.last_round == DetectorRound(0, 0, None, None, frozenset())

    detector.list_ended([*entries, crr])  # Quota answers one row per name: the ids are not job ids, nothing ends
    first = detector.last_round
    assert (first.asked, first.answered, first.unavailable, first.paused_until) == (10, 4, "quota", 5.0)
    assert first.unanswered == {e.tracking_id for e in entries[4:]}  # the cross-region job was not asked about

    now[0] += 2  # within the window: nothing is asked
    detector.list_ended(entries)
    assert detector.last_round == DetectorRound(10, 0, "quota", 5.0, frozenset(e.tracking_id for e in entries))

    answered: set[str] = set()
    for _ in range(3):  # ceil(5 / 2) windows: every job answered
        now[0] += 5
        detector.list_ended(entries)
        answered |= {e.tracking_id for e in entries} - detector.last_round.unanswered
    assert answered == {e.tracking_id for e in entries}

    everything = serve(lambda body: rows())
    detector = GraphDetector(graph(everything, ids_per_query=2))
    detector.list_ended(entries)
    assert detector.last_round == DetectorRound(10, 10, None, None, frozenset())


def test_the_detector_reports_a_refusal_with_its_pause(serve) -> None:
    now = [7.0]
    server = serve(lambda body: (403, {}, {"error": {"code": "AuthorizationFailed", "message": "m"}}))
    detector = GraphDetector(graph(server, monotonic=lambda: now[0]))
    entries = rs_entries(3)
    assert detector.list_ended(entries) == set()
    assert detector.last_round == DetectorRound(3, 0, "refused", 307.0, frozenset(e.tracking_id for e in entries))


def test_the_detector_rotates_over_providers_too(serve) -> None:
    now = [0.0]
    server = serve(Quota(now, per_window=1))
    example = [entry(VaultRef.from_resource_id(EXAMPLE_VAULT), f"0f3c2b1a-0000-4000-8000-00000000010{n}")
               for n in range(2)]
    entries = [*rs_entries(2), *example]
    detector = GraphDetector(graph(server, ids_per_query=1, monotonic=lambda: now[0]), (*PROVIDERS, Example))
    queries = []
    for _ in range(4):  # one query a window, four chunks (two per provider): each asked once in four windows
        detector.list_ended(entries)
        assert detector.last_round.answered == 1
        queries.append(server.requests[-1]["query"])
        now[0] += 5
    assert len(set(queries)) == 4
    assert sorted(query.split(" ")[0] for query in queries) == [
        "ExampleResources", "ExampleResources", "RecoveryServicesResources", "RecoveryServicesResources"]


def test_covers_says_which_vaults_jobs_resource_graph_holds(serve) -> None:
    detector = GraphDetector(graph(serve(lambda body: rows())), (*PROVIDERS, Example))
    vault = VaultRef.from_resource_id(RS_VAULT)
    assert detector.covers(vault.locator) and detector.covers(RS_VAULT.upper())
    assert detector.covers(VaultRef.from_resource_id(EXAMPLE_VAULT).locator)
    assert not detector.covers(vault.in_region("eastus2").locator)  # cross-region restore jobs are not in it
    example_crr = f"{EXAMPLE_VAULT}@eastus2"  # no provider serves these: not covered, and no error
    assert not detector.covers(example_crr)


def test_over_the_simulators_quota_every_ended_job_is_seen_within_ceil_n_over_k_windows() -> None:
    """The simulator's Resource Graph (15 queries per 5 s, its own quota headers and 429s) and the real query:
    200 ended jobs in chunks of 10 are 20 chunks; asked from the head each round, the last 5 would never be."""
    now = [0.0]
    simulator = BackupSimulator(token="t", clock=lambda: now[0])
    vault = VaultRef.from_resource_id(RS_VAULT)
    simulator.add_vault(RS_VAULT)
    entries = [entry(vault, simulator.add_job(RS_VAULT, JobScript(duration=1.0))) for _ in range(200)]
    now[0] = 10.0
    arm = ArmClient("http://127.0.0.1:9", StaticToken("t"), http=simulator.in_process("http://127.0.0.1:9"))
    detector = GraphDetector(ResourceGraph(arm, monotonic=lambda: now[0], ids_per_query=10))

    seen = detector.list_ended(entries)
    assert len(seen) == 150 and detector.last_round.unavailable == "quota"  # 15 chunks of the 20
    now[0] += 5.0  # the next quota window
    seen |= detector.list_ended(entries)

    assert seen == {e.tracking_id for e in entries}
    assert detector.last_round.answered == 150  # the 5 chunks left, then the first 10 again (the next lap)
    assert simulator.stats()["by_status"].get(429, 0) == 0
