"""The optional Event Grid topic in infra/: created only when asked, CloudEvents 1.0 and Entra ID only, EventGrid
Data Sender on it for the tracker's identity, and its endpoint as JOBS_EVENTGRID_TOPIC_ENDPOINT (or a topic of
your own through a parameter). Parsed with pycep like the other template tests."""

from __future__ import annotations

import json

from tests.infra.test_infra_templates import (
    INFRA,
    accessor_path,
    app_settings,
    body,
    module,
    only_resource,
    param,
    parsed,
    role_assignments,
    role_id_of,
    strings,
)

EVENTGRID_DATA_SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"
REL = "app/eventgrid.bicep"


def test_the_topic_takes_cloudevents_and_entra_id_only() -> None:
    name, topic = only_resource(REL, "Microsoft.EventGrid/topics")
    properties = body(topic)["properties"]
    assert properties["inputSchema"] == "CloudEventSchemaV1_0"  # the tracker sends CloudEvents 1.0
    assert properties["disableLocalAuth"] is True  # no access keys: the app's identity publishes
    (assignment,) = role_assignments(REL).values()
    assert role_id_of(REL, assignment) == EVENTGRID_DATA_SENDER
    assert body(assignment)["scope"] == name
    assert body(assignment)["properties"]["principalId"] == "principalId"
    assert accessor_path(parsed(REL)["outputs"]["endpoint"]["value"]) == f"{name}.properties.endpoint"


def test_the_topic_is_optional_and_its_endpoint_is_the_apps_setting() -> None:
    assert param("main.bicep", "eventGridTopic")["default"] is False
    assert param("main.bicep", "eventGridTopicEndpoint")["default"] == ""
    call = module("main.bicep", "eventGrid")
    assert "eventGridTopic" in strings(call["config"]["condition"])
    assert accessor_path(body(call)["params"]["principalId"]) == "identity.outputs.principalId"
    endpoint = body(module("main.bicep", "api"))["params"]["eventGridTopicEndpoint"]
    operands = endpoint["operator"]["operands"]
    assert accessor_path(operands["true_value"]) == "eventGrid.outputs.endpoint"
    assert operands["false_value"] == "eventGridTopicEndpoint"
    assert "eventGrid" in body(module("main.bicep", "api"))["dependsOn"]  # the role exists before the app runs
    assert app_settings()["JOBS_EVENTGRID_TOPIC_ENDPOINT"] == "eventGridTopicEndpoint"
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["eventGridTopic"]["value"] == "${JOBS_EVENTGRID_TOPIC=false}"
    assert mapped["eventGridTopicEndpoint"]["value"] == "${JOBS_EVENTGRID_TOPIC_ENDPOINT}"
