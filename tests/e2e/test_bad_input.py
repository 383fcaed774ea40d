"""Bad input at intake, end to end: through ``Tracker.accept_message`` on Azurite, then the poll path on the simulator.

Property: whatever arrives (arbitrary bytes, JSON of the wrong shape, messages up to the 64 KB queue limit, ids
carrying ``/``, ``..``, ``?``, ``#`` or ``%2F``, non-GUID job ids), intake never raises, and each message is either
tracked under valid ids or sits in ``<intake>-rejected`` as ``{"reason", "message", "rejectedAt"}`` with a reason
that names the field. Afterwards the simulator has seen only well-formed ARM paths. ``tests/unit/test_intake.py``
fuzzes the pure parser; this file is the storage-backed layer.
"""

from __future__ import annotations

import base64
import json
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.simulator import BackupSimulator, JobScript
from jobs.providers import parse_vault_id
from jobs.tracker import Tracker
from tests.conftest import VAULT, drain, results

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID = re.compile(rf"^{GUID}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_VAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,49}$")
_BACKUP_NAME = re.compile(r"^[-\w;.()$:]{1,260}$")
_TRACKING_ID = re.compile(rf"^(op-)?{GUID}-[0-9a-f]{{8}}$")

# What a reason may name for a message with no single bad field.
FIELDS = (
    "jobId", "vaultId", "subscriptionId", "resourceGroup", "vaultName", "jobResourceId", "operationUrl",
    "operation", "callbackUrl", "context", "correlationId", "timeoutMinutes", "message",
)
GENERIC = ("not JSON", "empty", "names no job", "JSON object", "UTF-8", "queue message can hold", "nested")
# The parts of a composite id that a reason may name instead of the id itself.
VAULT_PARTS = ("subscriptionId", "resourceGroup", "vaultName")

HOSTILE = [
    "/", "..", "../", "/..", "?", "#", "%2F", "%2f", "%2e%2e", "..%2F", "%252F", "\\", "?api-version=1",
    "?$filter=x", "&x=1", "#frag", "/backupJobs/", "/../../", " ", "\t", "\n", "\x00", "%00", ";", "@", ":",
    "\u2215", "\uff0f", "\u202e",
]


# -- the ARM paths the simulator may see -------------------------------------------------------------------


def record_arm_requests(simulator: BackupSimulator) -> list[tuple[str, str]]:
    """Every (method, target) the simulator's ARM side is asked for from now on (control calls left out)."""
    seen: list[tuple[str, str]] = []
    original = simulator.handle

    def handle(method: str, target: str, headers: Any, body: bytes) -> Any:
        if not target.lower().startswith("/_simulator"):
            seen.append((method, target))
        return original(method, target, headers, body)

    simulator.handle = handle  # type: ignore[method-assign]
    return seen


def _segment_ok(raw: str, pattern: re.Pattern[str]) -> bool:
    return bool(pattern.match(unquote(raw))) and "%25" not in raw.upper() and "%2F" not in raw.upper()


def arm_target_problem(method: str, target: str, api_version: str) -> str | None:
    """Why ``target`` is not one of the ARM reads the tracker may make (None when it is)."""
    if method != "GET":
        return f"method {method}"
    parts = urlsplit(target)
    if parts.fragment or "#" in target:
        return "a fragment"
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True) if parts.query else []
    keys = [k for k, _ in query]
    if keys.count("api-version") != 1 or dict(query)["api-version"] != api_version:
        return f"query {parts.query!r}"
    segments = parts.path.split("/")
    literal = {1: "subscriptions", 3: "resourceGroups", 5: "providers", 6: "Microsoft.RecoveryServices", 7: "vaults"}
    if len(segments) < 10 or segments[0] != "":
        return "not a vault path"
    for index, word in literal.items():
        if segments[index].lower() != word.lower():
            return f"segment {index} is {segments[index]!r}"
    if not (_segment_ok(segments[2], _GUID) and _segment_ok(segments[4], _RESOURCE_GROUP)
            and _segment_ok(segments[8], _VAULT_NAME)) or unquote(segments[4]).endswith("."):
        return "a bad subscription, resource group or vault"
    rest = segments[9:]
    extra = set(keys) - {"api-version"}
    if rest == ["backupJobs"]:  # BackupJobs_List
        return None if extra <= {"$filter", "$skiptoken"} else f"list query {parts.query!r}"
    if extra:
        return f"query {parts.query!r}"
    if len(rest) == 2 and rest[0] in ("backupJobs", "backupOperations") and _segment_ok(rest[1], _GUID):
        return None
    if (len(rest) == 8 and [rest[0], rest[2], rest[4], rest[6]]
            == ["backupFabrics", "protectionContainers", "protectedItems", "operationsStatus"]
            and all(_segment_ok(rest[i], _BACKUP_NAME) for i in (1, 3, 5)) and _segment_ok(rest[7], _GUID)):
        return None
    return f"path tail {'/'.join(rest)!r}"


def run_poll_path(tracker: Tracker) -> int:
    """One poll round and every poll message it queued, handled in this thread; returns the messages handled."""
    tracker.run_poll_round()
    handled = 0
    for text in drain(tracker._storage.queue(tracker.settings.poll_queue)):
        tracker.handle_poll_message(text)
        handled += 1
    return handled


# -- strategies ----------------------------------------------------------------------------------------------


def good_messages(simulator: BackupSimulator) -> dict[str, dict[str, Any]]:
    """One valid message of each intake shape, all naming jobs and operations the simulator knows."""
    sub, rg, name = "11111111-2222-3333-4444-555555555555", "backup-rg", "prod-vault"
    jobs = [simulator.add_job(VAULT, JobScript(duration=600)) for _ in range(4)]
    operation = simulator.trigger_backup(VAULT, JobScript(duration=600), operation_delay=600)
    return {
        "vaultId": {"jobId": jobs[0], "vaultId": VAULT},
        "parts": {"jobId": jobs[1], "subscriptionId": sub, "resourceGroup": rg, "vaultName": name},
        "jobResourceId": {"jobResourceId": f"{VAULT}/backupJobs/{jobs[2]}"},
        "operation": {
            "vaultId": VAULT,
            "operation": {"name": str(uuid.uuid4()), "status": "Succeeded", "properties": {"jobId": jobs[3]}},
        },
        "operationUrl": {"operationUrl": operation.azure_async_operation},
    }


# Which names a reason may use for each field that can be spoilt (a composite id may be blamed on its part).
MUTABLE: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {
    "vaultId": {("jobId",): ("jobId",), ("vaultId",): ("vaultId", *VAULT_PARTS)},
    "parts": {("jobId",): ("jobId",), ("subscriptionId",): ("subscriptionId",),
              ("resourceGroup",): ("resourceGroup",), ("vaultName",): ("vaultName",)},
    "jobResourceId": {("jobResourceId",): ("jobResourceId", *VAULT_PARTS)},
    "operation": {("vaultId",): ("vaultId", *VAULT_PARTS), ("operation",): ("operation",),
                  ("operation", "properties", "jobId"): ("operation.properties.jobId",),
                  ("operation", "status"): ("operation.status",)},
    "operationUrl": {("operationUrl",): ("operationUrl", *VAULT_PARTS)},
}
OPTIONAL = {("callbackUrl",): ("callbackUrl",), ("context",): ("context",), ("correlationId",): ("correlationId",),
            ("timeoutMinutes",): ("timeoutMinutes",)}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def spoilt(draw: st.DrawFn, original: object) -> object:
    """A value close to ``original`` but with something hostile in it, or of the wrong type."""
    text = original if isinstance(original, str) else json.dumps(original)
    fragment = draw(st.sampled_from(HOSTILE) | st.text(min_size=1, max_size=6))
    at = draw(st.integers(0, len(text)))
    return draw(st.one_of(
        st.just(text[:at] + fragment + text[at:]),
        st.just(text + fragment),
        st.just(text.replace("-", fragment, 1)),
        st.just(text.upper().replace("-", "", 1)),
        st.just(text[:at]),
        st.just(text.replace("/", "%2F")),
        st.just(text.replace("/", "/../", 1)),
        st.just(text.replace("vaults/", "vaults/x/../", 1)),
        st.just(text.replace("backupJobs/", "backupJobs/..%2F", 1)),
        st.just(str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))[:-1] + fragment),
        json_values,
    ))


@st.composite
def mutated_messages(draw: st.DrawFn, goods: dict[str, dict[str, Any]]) -> tuple[object, tuple[str, ...], str]:
    """A good message with exactly one field spoilt: (body, names the reason may use, shape)."""
    shape = draw(st.sampled_from(sorted(goods)))
    message = json.loads(json.dumps(goods[shape]))
    fields = {**MUTABLE[shape], **OPTIONAL}
    path = draw(st.sampled_from(sorted(fields)))
    holder = message
    for key in path[:-1]:
        holder = holder[key]
    original = holder.get(path[-1])
    if path[0] == "callbackUrl":
        value: object = draw(st.sampled_from([
            "http://127.0.0.1/cb", "file:///etc/passwd", "https://user@127.0.0.1/cb", "https://10.0.0.1/cb",
            "https://127.0.0.1/cb#x", "https://127.0.0.1%2F@evil/cb", "https://evil.example/cb", "", "https://",
        ]) | json_values)
    elif path[0] == "context":
        value = draw(st.lists(json_values, max_size=3) | json_scalars | st.just({"pad": "x" * 17000}))
    elif path[0] == "correlationId":
        value = draw(st.integers() | st.lists(st.text(max_size=3), max_size=2) | st.just("c" * 1025))
    elif path[0] == "timeoutMinutes":
        value = draw(st.sampled_from([0, -1, "5", True, float("nan"), float("inf"), 10**9, [], {}]))
    else:
        value = draw(spoilt(original))
    holder[path[-1]] = value
    body = json.dumps(message)
    if draw(st.booleans()):
        body = base64.b64encode(body.encode()).decode()
    return body, fields[path], shape


def _nested(depth: int, open_: str, close: str) -> str:
    return open_ * depth + "1" + close * depth


garbage = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.text(max_size=200).map(lambda t: "/" + t),
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from((*FIELDS, "operation", "properties", "status")), json_values, max_size=5)
    .map(json.dumps),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    json_values.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
    st.integers(1, 5000).map(lambda d: _nested(d, "[", "]")),
    st.integers(1, 5000).map(lambda d: _nested(d, '{"a":', "}")),
)


@st.composite
def huge_messages(draw: st.DrawFn, goods: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    """A message of up to 64 KB: a good one padded with an unknown field, or garbage of that size."""
    fill = draw(st.sampled_from(["x", "é", "&", "<", '"', "\\", "\U0001f600", "\u2028", "/.."]))
    size = draw(st.integers(40_000, 64 * 1024))
    kind = draw(st.sampled_from(["padded", "text", "context", "jobId"]))
    good = goods[draw(st.sampled_from(sorted(goods)))]
    shapes: dict[str, Callable[[str], str]] = {
        "padded": lambda pad: json.dumps({**good, "padding": pad}, ensure_ascii=False),
        "context": lambda pad: json.dumps({**good, "context": {"blob": pad}}, ensure_ascii=False),
        "jobId": lambda pad: json.dumps({"jobId": pad, "vaultId": VAULT}, ensure_ascii=False),
        "text": lambda pad: pad,
    }
    count = size // len(fill.encode("utf-8"))
    while len(body := shapes[kind](fill * count).encode("utf-8")) > size:  # fit the queue's 64 KB
        count = count * size // len(body) - 1
    return body.decode("utf-8"), kind == "padded"


# -- checks --------------------------------------------------------------------------------------------------


def check_rejected_record(tracker: Tracker, body: bytes | str, reason: str) -> None:
    """The rejected queue holds exactly this message, as {"reason", "message", "rejectedAt"}."""
    queue = tracker._storage.queue(tracker.settings.rejected_queue)
    records = [json.loads(text) for text in drain(queue)]
    assert len(records) == 1, records
    record = records[0]
    assert {"reason", "message", "rejectedAt"} <= set(record), record
    assert record["reason"] == reason
    datetime.fromisoformat(record["rejectedAt"])
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if record.get("messageEncoding") == "base64":
        original = base64.b64encode(raw).decode("ascii")
    else:
        original = raw.decode("utf-8")
    if record.get("truncated"):
        assert original.startswith(record["message"]) and len(record["message"]) >= 1024
    else:
        assert record["message"] == original


def check_tracked(tracker: Tracker, tracking_ids: list[str]) -> None:
    """Accepted: every tracked id is a GUID-based tracking id whose row names valid GUIDs and names."""
    assert tracking_ids
    for tracking_id in tracking_ids:
        assert _TRACKING_ID.match(tracking_id), tracking_id
        item = tracker._store.get(tracking_id)
        assert item is not None, tracking_id
        parse_vault_id(item.vault_id)  # raises on anything off
        if item.kind == "job":
            assert _GUID.match(item.job_id or ""), item
            assert tracking_id.startswith(str(item.job_id).lower())
        else:
            assert _GUID.match(item.operation_id or ""), item
            names = re.findall(r"/(?:backupFabrics|protectionContainers|protectedItems)/([^/]+)",
                               item.operation_path or "")
            for name in names:
                assert _BACKUP_NAME.match(unquote(name)), item


def reason_names(reason: str, names: tuple[str, ...]) -> bool:
    return any(name in reason for name in names)


# -- tests ---------------------------------------------------------------------------------------------------


def test_any_message_is_tracked_under_valid_ids_or_rejected_naming_the_field(simulator, tracker):
    arm_requests = record_arm_requests(simulator)
    goods = good_messages(simulator)
    expected = {shape: tracker.accept_message(json.dumps(msg)).tracking_ids for shape, msg in goods.items()}
    assert all(expected.values()), expected
    tally = {"accepted": 0, "rejected": 0}

    def intake(body: bytes | str) -> str | None:
        acceptance = tracker.accept_message(body)  # must never raise
        if acceptance.rejected is None:
            check_tracked(tracker, acceptance.tracking_ids)
            tally["accepted"] += 1
            return None
        assert "\n" not in acceptance.rejected, acceptance.rejected
        check_rejected_record(tracker, body, acceptance.rejected)
        tally["rejected"] += 1
        return acceptance.rejected

    hypothesis_settings = settings(
        max_examples=120, deadline=None, database=None, derandomize=True,  # the same cases every run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )

    @hypothesis_settings
    @given(case=mutated_messages(goods))
    def one_field_spoilt(case: tuple[str, tuple[str, ...], str]) -> None:
        body, names, _shape = case
        reason = intake(body)
        # Accepted only when the spoiling left a valid id (a trailing "/", blanks, another valid name): check_tracked
        # has then seen that the rows hold validated GUIDs and names. Rejected: the reason names the field.
        if reason is not None:
            assert reason_names(reason, names), (reason, names)

    @hypothesis_settings
    @given(body=garbage)
    def anything(body: bytes | str) -> None:
        reason = intake(body)
        if reason is not None:
            assert reason_names(reason, FIELDS + GENERIC), reason

    @settings(hypothesis_settings, max_examples=25)
    @given(case=huge_messages(goods))
    def huge(case: tuple[str, bool]) -> None:
        body, acceptable = case
        reason = intake(body)
        if acceptable:
            assert reason is None, reason
        else:
            assert reason is not None and reason_names(reason, FIELDS + GENERIC), reason

    one_field_spoilt()
    anything()
    huge()
    assert tally["accepted"] >= 10 and tally["rejected"] >= 150, tally

    # Everything that was accepted is polled: the simulator sees only well-formed reads of the tracked jobs.
    assert run_poll_path(tracker) >= 1
    assert arm_requests, "the poll path made no ARM request"
    problems = [(m, t, p) for m, t in arm_requests if (p := arm_target_problem(m, t, _api_version(tracker)))]
    assert problems == []
    stats = simulator.stats()
    assert stats["by_kind"]["other"] == 0 and stats["unauthorized"] == 0, stats
    assert all(_GUID.match(job_id) for job_id in stats["job_gets"]), stats["job_gets"]
    assert any("/vaults/prod-vault/backupJobs" in target for _, target in arm_requests), arm_requests


def test_path_checker_catches_what_it_should():
    """The checker above is what the property relies on: it must refuse the paths a bad id would produce."""
    api = "2025-08-01"
    base = VAULT + "/backupJobs/"
    job = str(uuid.uuid4())
    assert arm_target_problem("GET", f"{base}{job}?api-version={api}", api) is None
    for bad in (f"{base}{job}/..?api-version={api}", f"{base}..%2F{job}?api-version={api}",
                f"{base}{job}?api-version={api}&x=1", f"{base}not-a-guid?api-version={api}",
                VAULT.replace("prod-vault", "prod%2Fvault") + f"/backupJobs/{job}?api-version={api}",
                VAULT.replace("backup-rg", "..") + f"/backupJobs/{job}?api-version={api}",
                f"{base}{job}?api-version=2000-01-01", f"{base}{job}#x?api-version={api}"):
        assert arm_target_problem("GET", bad, api) is not None, bad


def _garbage_burst(seed: int, count: int) -> list[str]:
    """Deterministic garbage that a queue can carry (text only, XML-safe characters)."""
    rng = random.Random(seed)
    job = str(uuid.uuid4())
    fixed = [
        "", " ", "null", "[]", "{}", "42", '"just a string"', "not json", "{" * 3, "\ufeff{}",
        "é" * 32_000,                                       # non-ASCII at the 64 KB limit
        "&" * 12_500,                                       # XML-escaped on the wire (&amp;)
        '"' * 10_000,                                       # JSON-escaped in the rejected record
        "\U0001f600" * 16_000,                              # 12 bytes each as a JSON escape
        _nested(3000, "[", "]"),                            # deeper than the JSON parser goes
        _nested(960, '{"a":', "}"),
        # written as text: json.dumps of 950 levels can exceed the recursion limit of a pytest-xdist worker
        json.dumps({"jobId": job, "vaultId": VAULT, "context": {}})[:-3] + _nested(950, '{"a":', "}") + "}",
        json.dumps({"jobId": job + "/../x", "vaultId": VAULT}),
        json.dumps({"jobId": job, "vaultId": VAULT.replace("prod-vault", "prod-vault%2F..%2Fother")}),
        json.dumps({"jobResourceId": f"{VAULT}/backupJobs/{job}?api-version=1"}),
        json.dumps({"jobResourceId": f"{VAULT}/backupJobs/{job}#"}),
        json.dumps({"jobId": job, "subscriptionId": "../..", "resourceGroup": "rg", "vaultName": "v1"}),
        json.dumps({"jobId": job, "subscriptionId": str(uuid.uuid4()), "resourceGroup": "rg/..", "vaultName": "v1"}),
        json.dumps({"jobId": job, "vaultId": VAULT, "timeoutMinutes": "soon"}),
        json.dumps({"jobId": job, "vaultId": VAULT, "callbackUrl": "file:///etc/passwd"}),
        json.dumps({"operationUrl": "http://127.0.0.1:1/subscriptions/x/../../../etc"}),
        base64.b64encode(json.dumps({"jobId": "nope", "vaultId": VAULT}).encode()).decode(),
        f"{VAULT}/backupJobs/{job}/../../../../x",
    ]
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["é", "ß", "\u2028", "\U0001f600", "\t"]
    randoms = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(count)]
    randoms += [base64.b64encode(rng.randbytes(rng.randint(1, 300))).decode() for _ in range(count)]
    return fixed + randoms


def test_a_runner_fed_a_burst_of_garbage_keeps_going_and_the_good_job_ends(simulator, tracker, run_host):
    arm_requests = record_arm_requests(simulator)
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    burst = _garbage_burst(seed=3, count=15)
    half = len(burst) // 2
    for text in burst[:half]:
        intake.send_message(text)
    good = simulator.add_job(VAULT, JobScript(final_status="Completed", duration=0.5))
    intake.send_message(json.dumps({"jobId": good, "vaultId": VAULT, "correlationId": "the-good-one"}))
    for text in burst[half:]:
        intake.send_message(text)

    assert run_host(until_idle=True, timeout=60).join() == 0

    events = results(tracker)
    assert [(e["type"], e["data"]["jobId"], e["data"]["correlationId"]) for e in events] == [
        ("BackupJob.Completed", good, "the-good-one")
    ]
    rejected = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.rejected_queue))]
    assert len(rejected) == len(burst), (len(rejected), len(burst))
    assert all(r["reason"] and r["rejectedAt"] and "message" in r for r in rejected)
    assert drain(tracker._storage.queue(f"{tracker.settings.intake_queue}-poison")) == []
    problems = [(m, t, p) for m, t in arm_requests if (p := arm_target_problem(m, t, _api_version(tracker)))]
    assert problems == []
    assert simulator.stats()["job_gets"].get(good, 0) >= 1


def _api_version(tracker) -> str:
    return tracker.settings.api_versions["JOBS_ARM_API_VERSION"]
