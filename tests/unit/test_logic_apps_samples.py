"""The Logic Apps samples (``samples/logic-apps/``) are usable as they are: valid JSON, every expression's functions
exist in the workflow definition language, every action, parameter and ``runAfter`` they name exists, and the Parse
JSON schema is the repository's ``schemas/backup-job-result.schema.json``.

No JSON Schema of the workflow definition language can be had here (schema.management.azure.com is not reachable,
and no PyPI or npm package ships it), so the structure is checked by these rules instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.webhooks.callback_urls import AllowedHosts

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "logic-apps"
WORKFLOWS = sorted(SAMPLES.glob("*.workflow.json"))

# The workflow definition language's functions, from "Reference guide to workflow expression functions in Azure
# Logic Apps and Power Automate":
# https://learn.microsoft.com/en-us/azure/logic-apps/workflow-definition-language-functions-reference
# Function names are case-insensitive (the designer itself writes encodeURIComponent for encodeUriComponent).
_WDL_NAMES = """
    chunk concat endsWith formatNumber guid indexOf isFloat isInt lastIndexOf length nthIndexOf replace slice split
    startsWith substring toLower toUpper trim
    contains empty first intersection item join last reverse skip sort take union
    and equals greater greaterOrEquals if less lessOrEquals not or
    array base64 base64ToBinary base64ToString binary bool createArray dataUri dataUriToBinary dataUriToString
    decimal decodeBase64 decodeDataUri decodeUriComponent encodeUriComponent float int json string uriComponent
    uriComponentToBinary uriComponentToString xml
    add div max min mod mul rand range sub
    addDays addHours addMinutes addSeconds addToTime convertFromUtc convertTimeZone convertToUtc dateDifference
    dayOfMonth dayOfWeek dayOfYear formatDateTime getFutureTime getPastTime parseDateTime startOfDay startOfHour
    startOfMonth subtractFromTime ticks utcNow
    action actions body formDataMultiValues formDataValue items iterationIndexes listCallbackUrl multipartBody
    outputs parameters result trigger triggerBody triggerFormDataMultiValues triggerFormDataValue
    triggerMultipartBody triggerOutputs variables workflow
    uriHost uriPath uriPathAndQuery uriPort uriQuery uriScheme
    addProperty coalesce removeProperty setProperty xpath
"""
WDL_FUNCTIONS = frozenset(name.lower() for name in re.findall(r"\w+", _WDL_NAMES))
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_NAMED = re.compile(r"\b(body|outputs|actions|action|parameters)\s*\(\s*'((?:[^']|'')*)'", re.IGNORECASE)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from _strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child)


def expressions(text: str) -> list[str]:
    """The expressions in a string: all of it after a leading ``@``, or each ``@{...}`` inside it."""
    if text.startswith("@@") or "@" not in text:
        return []
    if text.startswith("@") and not text.startswith("@{"):
        return [text[1:]]
    found, start = [], 0
    while (at := text.find("@{", start)) >= 0:
        depth, index, quoted = 0, at + 1, False
        while index < len(text):
            char = text[index]
            if char == "'":
                quoted = not quoted
            elif not quoted and char == "{":
                depth += 1
            elif not quoted and char == "}":
                depth -= 1
                if depth == 0:
                    break
            index += 1
        assert depth == 0, f"unclosed @{{ in {text!r}"
        found.append(text[at + 2 : index])
        start = index + 1
    return found


def _actions(actions: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, action in actions.items():
        yield name, action
        for nested in (action.get("actions"), (action.get("else") or {}).get("actions"),
                       *(case.get("actions") for case in (action.get("cases") or {}).values()),
                       (action.get("default") or {}).get("actions")):
            if nested:
                yield from _actions(nested)


@pytest.fixture(params=WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return json.loads(request.param.read_text(encoding="utf-8"))


def test_there_are_the_three_samples():
    assert {p.name for p in WORKFLOWS} == {
        "backup-and-wait-webhook.workflow.json", "backup-and-poll-async.workflow.json",
        "results-queue-consumer.workflow.json",
    }


def test_every_expression_calls_only_functions_of_the_language(workflow):
    calls = set()
    for text in _strings(workflow):
        for expression in expressions(text):
            calls |= {name for name in _CALL.findall(_LITERAL.sub("''", expression))}
    assert calls, "no expression found: the extraction is broken"
    unknown = {name for name in calls if name.lower() not in WDL_FUNCTIONS}
    assert unknown == set()


def test_every_named_action_parameter_and_run_after_exists(workflow):
    definition = workflow["definition"]
    assert definition["$schema"].endswith("/2016-06-01/workflowdefinition.json#")
    assert workflow["kind"] == "Stateful"  # stateless workflows pass the 202 through (README)
    actions = dict(_actions(definition["actions"]))
    parameters = set(definition.get("parameters", {}))
    for name, action in actions.items():
        for after in action.get("runAfter", {}):
            assert after in actions, f"{name} runs after unknown {after}"
    for text in _strings(workflow):
        for expression in expressions(text):
            for function, argument in _NAMED.findall(expression):
                wanted = parameters if function.lower() == "parameters" else set(actions)
                assert argument in wanted, f"{function}('{argument}') names nothing in the workflow"


def test_the_samples_that_call_the_tracker_send_its_key_and_follow_the_contract():
    webhook = json.loads((SAMPLES / "backup-and-wait-webhook.workflow.json").read_text())["definition"]
    wait = webhook["actions"]["Wait_for_backup_job"]["inputs"]
    assert wait["subscribe"]["body"]["callbackUrl"] == "@{listCallbackUrl()}"
    assert wait["subscribe"]["headers"] == wait["unsubscribe"]["headers"] == {
        "x-functions-key": "@parameters('trackerKey')"}
    assert wait["unsubscribe"]["method"] == "DELETE"
    assert wait["unsubscribe"]["uri"] == "@{parameters('trackerUrl')}/api/jobs"  # by Logic Apps' own headers
    poll = json.loads((SAMPLES / "backup-and-poll-async.workflow.json").read_text())["definition"]
    track = poll["actions"]["Track_backup_job"]
    assert "operationOptions" not in track  # the asynchronous pattern stays on
    assert poll["actions"]["Trigger_backup"]["operationOptions"] == "DisableAsyncPattern"
    assert webhook["parameters"]["trackerKey"]["type"] == "SecureString"


def test_point13_no_unsubscribe_of_a_sample_uses_list_callback_url(workflow):
    """Logic Apps does not support listCallbackUrl() in an HTTP Webhook action's unsubscribe: the samples unsubscribe
    by the x-ms-client-tracking-id and x-ms-workflow-operation-name headers Logic Apps sends on both calls."""
    webhooks = [a for _, a in _actions(workflow["definition"]["actions"]) if a.get("type") == "HttpWebhook"]
    for action in webhooks:
        unsubscribe = action["inputs"]["unsubscribe"]
        assert not any("listcallbackurl" in text.lower() for text in _strings(unsubscribe)), unsubscribe
        assert unsubscribe["method"] == "DELETE" and unsubscribe["uri"].endswith("/api/jobs")


def test_the_consumer_parses_events_with_the_repositorys_schema():
    consumer = json.loads((SAMPLES / "results-queue-consumer.workflow.json").read_text())["definition"]
    schema = json.loads((ROOT / "schemas" / "backup-job-result.schema.json").read_text())
    embedded = consumer["actions"]["Parse_event"]["inputs"]["schema"]
    assert embedded == {k: v for k, v in schema.items() if k not in ("$schema", "id")}


def test_the_readme_allows_the_logic_apps_callback_hosts_and_no_wider():
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    [setting] = re.findall(r"JOBS_CALLBACK_ALLOWED_HOSTS=(\S+)", readme)
    allowed = AllowedHosts.from_setting(setting.strip("`"))
    assert allowed.match("prod-12.westeurope.logic.azure.com")  # Consumption callbacks in the workflow's region
    assert allowed.match("my-logic-app.azurewebsites.net")  # Standard: the app's own host, by name
    for other in ("evil.example", "other-app.azurewebsites.net", "prod-12.eastus.logic.azure.com", "logic.azure.com"):
        assert not allowed.match(other), other


def test_the_expression_extraction_finds_what_it_must():
    assert expressions("@{parameters('a')}/api/jobs?x=@{encodeUriComponent(listCallbackUrl())}") == [
        "parameters('a')", "encodeUriComponent(listCallbackUrl())"]
    assert expressions("@body('x')?['y']") == ["body('x')?['y']"]
    assert expressions("@@literal") == [] and expressions("plain") == []
