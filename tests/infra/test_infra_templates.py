"""The deployment templates, checked without the Bicep CLI.

Every ``.bicep`` file under ``infra/`` is parsed with pycep-parser and the points of issue 4 are asserted over the
parsed resources: the Flex Consumption plan and Python app, the user-assigned identity, identity-based storage with
shared keys off, the queues and the table, every contract setting, the role assignments with their built-in role
ids and scopes, Application Insights with Entra ID auth, no secret in any output. ``azure.yaml``,
``infra/main.parameters.json`` and ``.funcignore`` are checked alongside.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

EXPECTED_FILES = {
    "main.bicep",
    "app/api.bicep",
    "app/identity.bicep",
    "app/monitoring.bicep",
    "app/storage.bicep",
    "app/rbac.bicep",
    "app/backup-reader-subscription.bicep",
    "app/backup-reader-resource-group.bicep",
    "app/backup-reader-vault.bicep",
    "app/backup-reader-backup-vault.bicep",
    "app/keyvault-secrets-user.bicep",
    "app/eventgrid.bicep",
}

QUEUES = {
    "backup-jobs",
    "backup-jobs-rejected",
    "backup-jobs-poison",
    "backup-jobs-poll",
    "backup-jobs-poll-poison",
    "backup-jobs-deliver",
    "backup-jobs-deliver-poison",
    "backup-job-results",
    "backup-job-results-deadletter",
}

# Built-in role definition ids.
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
BACKUP_READER = "a795c7a0-d4a2-40c1-ae25-d81f01202912"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"

CONTRACT_SETTINGS = {
    "JOBS_INTAKE_QUEUE",
    "JOBS_RESULTS_QUEUE",
    "JOBS_TABLE",
    "JOBS_WEBHOOK_URLS",
    "JOBS_WEBHOOK_SECRET",
    "JOBS_CALLBACK_ALLOWED_HOSTS",
    "JOBS_POLL_SECONDS",
    "JOBS_MAX_TRACKING_HOURS",
    "ARM_ENDPOINT",
    "JOBS_ARM_API_VERSION",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
STORAGE_IDENTITY_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
}


# ---------------------------------------------------------------------------------------------------------------
# Helpers over pycep's output
# ---------------------------------------------------------------------------------------------------------------
def bicep_files() -> list[str]:
    return sorted(p.relative_to(INFRA).as_posix() for p in INFRA.rglob("*.bicep"))


@functools.cache
def parsed(rel: str) -> dict[str, Any]:
    return BicepParser().parse(file_path=INFRA / rel)


@functools.cache
def source(rel: str) -> str:
    return (INFRA / rel).read_text(encoding="utf-8")


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """The object of a resource or module, under any `if (...)` and `[for ...]` wrapping."""
    config = declaration["config"]
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources_of(rel: str, rtype: str, *, existing: bool | None = False) -> dict[str, dict[str, Any]]:
    found = {
        name: res
        for name, res in parsed(rel)["resources"].items()
        if res["type"].lower() == rtype.lower() and (existing is None or res["existing"] is existing)
    }
    return found


def only_resource(rel: str, rtype: str) -> tuple[str, dict[str, Any]]:
    found = resources_of(rel, rtype)
    assert len(found) == 1, f"{rel}: expected one {rtype}, found {sorted(found)}"
    return next(iter(found.items()))


def leaves(node: Any) -> Iterator[Any]:
    """Every scalar (and every dict key) inside a parsed expression."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from leaves(value)
    elif isinstance(node, list):
        for item in node:
            yield from leaves(item)
    else:
        yield node


def strings(node: Any) -> set[str]:
    return {leaf for leaf in leaves(node) if isinstance(leaf, str)}


def accessor_path(node: Any) -> str:
    """`a.b.c` for pycep's nested property_accessor operators (other expressions: '')."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return f"{accessor_path(operands['operand_1'])}.{accessor_path(operands['operand_2'])}"
    return ""


def variable(rel: str, name: str) -> Any:
    variables = parsed(rel)["variables"]
    assert name in variables, f"{rel}: variable {name} missing"
    return variables[name]["value"]


def param(rel: str, name: str) -> dict[str, Any]:
    params = parsed(rel)["parameters"]
    assert name in params, f"{rel}: parameter {name} missing"
    return params[name]


def decorator_types(declaration: dict[str, Any]) -> set[str]:
    return {d["type"] for d in declaration.get("decorators", [])}


def target_scope(rel: str) -> str:
    return parsed(rel).get("globals", {}).get("scope", {}).get("value", "resourceGroup")


def role_id_of(rel: str, assignment: dict[str, Any]) -> str:
    """The role definition GUID of a role assignment, following one variable indirection."""
    role_def = body(assignment)["properties"]["roleDefinitionId"]
    func = role_def["function"]
    assert func["type"] == "subscription_resource_id", f"{rel}: roleDefinitionId is not subscriptionResourceId(...)"
    assert func["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    name = func["parameters"]["resource_name_1"]
    variables = parsed(rel)["variables"]
    return variables[name]["value"] if name in variables else name


def role_assignments(rel: str) -> dict[str, dict[str, Any]]:
    return resources_of(rel, "Microsoft.Authorization/roleAssignments")


def module(rel: str, name: str) -> dict[str, Any]:
    modules = parsed(rel).get("modules", {})
    assert name in modules, f"{rel}: module {name} missing"
    return modules[name]


def setting_items(expr: Any) -> Iterator[dict[str, Any]]:
    """The {name, value} items an app settings expression is made of: variables, concat(...), filter(...) and
    `cond ? [...] : [...]` are followed; the extra settings (a for-expression, names known only at deployment) are
    left out."""
    if isinstance(expr, str):
        yield from setting_items(variable("app/api.bicep", expr))
    elif isinstance(expr, list):
        for item in expr:
            assert isinstance(item, dict) and "name" in item, f"not an app setting: {item}"
            yield item
    elif isinstance(expr, dict) and "function" in expr:
        func = expr["function"]
        if func["type"] == "concat":
            for arg in func["parameters"].values():
                yield from setting_items(arg)
        elif func["type"] == "filter":
            yield from setting_items(func["parameters"]["input_array"])
        else:
            raise AssertionError(f"unexpected function in app settings: {func['type']}")
    elif isinstance(expr, dict) and expr.get("operator", {}).get("type") == "conditional":
        operands = expr["operator"]["operands"]
        yield from setting_items(operands["true_value"])
        yield from setting_items(operands["false_value"])
    elif isinstance(expr, dict) and "loop_type" in expr:
        return  # extraAppSettings: checked in test_infra_first_deploy.py
    else:
        raise AssertionError(f"unexpected app settings expression: {str(expr)[:200]}")


def app_settings() -> dict[str, Any]:
    """name -> value expression of every app setting the site can get (optional ones included)."""
    _, site = only_resource("app/api.bicep", "Microsoft.Web/sites")
    expr = body(site)["properties"]["siteConfig"]["appSettings"]
    assert expr["function"]["type"] == "concat", "appSettings should be concat(platform, tracker, extra)"
    settings: dict[str, Any] = {}
    for item in setting_items(expr):
        assert item["name"] not in settings, f"app setting {item['name']} set twice"
        settings[item["name"]] = item["value"]
    return settings


# ---------------------------------------------------------------------------------------------------------------
# Files, modules, scopes
# ---------------------------------------------------------------------------------------------------------------
def test_the_expected_template_files_exist() -> None:
    assert set(bicep_files()) >= EXPECTED_FILES


@pytest.mark.parametrize("rel", bicep_files())
def test_every_bicep_file_parses(rel: str) -> None:
    template = parsed(rel)
    assert template["resources"] or template.get("modules"), f"{rel} declares nothing"


@pytest.mark.parametrize("rel", bicep_files())
def test_plain_resources_only_no_registry_modules_no_deployer(rel: str) -> None:
    for name, mod in parsed(rel).get("modules", {}).items():
        assert mod["type"] == "local", f"{rel}: module {name} is not a local file ({mod['detail']})"
    text = source(rel)
    assert "br/public:" not in text and "'br:" not in text and "'ts:" not in text
    # checkov's pycep-parser (0.5.1) cannot read deployer(): a file using it would drop out of the scan.
    assert "deployer()" not in text


# The files each per-file check below has something to check in: a case that finds nothing fails, and a file
# that gains (or loses) modules, role assignments or outputs must be added here (or removed).
FILES_WITH_MODULES = ["main.bicep"]
FILES_WITH_ROLE_ASSIGNMENTS = [
    "app/backup-reader-backup-vault.bicep",
    "app/backup-reader-resource-group.bicep",
    "app/backup-reader-subscription.bicep",
    "app/backup-reader-vault.bicep",
    "app/eventgrid.bicep",
    "app/keyvault-secrets-user.bicep",
    "app/rbac.bicep",
]
FILES_WITH_OUTPUTS = ["app/api.bicep", "app/eventgrid.bicep", "app/identity.bicep", "app/monitoring.bicep",
                      "app/storage.bicep", "main.bicep"]


def modules_of(rel: str) -> dict[str, Any]:
    return parsed(rel).get("modules", {})


def outputs_of(rel: str) -> dict[str, Any]:
    return parsed(rel).get("outputs", {})


def test_the_per_file_checks_run_on_every_file_that_has_something_to_check() -> None:
    assert [rel for rel in bicep_files() if modules_of(rel)] == FILES_WITH_MODULES
    assert [rel for rel in bicep_files() if role_assignments(rel)] == FILES_WITH_ROLE_ASSIGNMENTS
    assert [rel for rel in bicep_files() if outputs_of(rel)] == FILES_WITH_OUTPUTS


@pytest.mark.parametrize("rel", FILES_WITH_MODULES)
def test_module_calls_match_the_module_parameters(rel: str) -> None:
    modules = modules_of(rel)
    assert modules, f"{rel}: no module calls found to check"
    for name, mod in modules.items():
        target = (INFRA / rel).parent / mod["detail"]["path"]
        assert target.is_file(), f"{rel}: module {name} points at missing {target}"
        declared = parsed(target.relative_to(INFRA).as_posix())["parameters"]
        passed = set(body(mod).get("params", {}))
        assert passed <= set(declared), f"{rel}: module {name} passes unknown params {passed - set(declared)}"
        required = {p for p, d in declared.items() if "default" not in d}
        assert required <= passed, f"{rel}: module {name} misses required params {required - passed}"


def test_main_is_subscription_scoped_and_creates_the_resource_group() -> None:
    assert target_scope("main.bicep") == "subscription"
    name, _ = only_resource("main.bicep", "Microsoft.Resources/resourceGroups")
    for mod_name in ("identity", "monitoring", "storage", "rbac", "api"):
        assert body(module("main.bicep", mod_name))["scope"] == name, f"module {mod_name} not deployed to the RG"


# ---------------------------------------------------------------------------------------------------------------
# Plan and function app
# ---------------------------------------------------------------------------------------------------------------
def test_plan_is_flex_consumption_fc1() -> None:
    _, plan = only_resource("app/api.bicep", "Microsoft.Web/serverfarms")
    config = body(plan)
    assert config["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert config["properties"]["reserved"] is True


def test_site_is_a_linux_python_flex_function_app() -> None:
    plan_name, _ = only_resource("app/api.bicep", "Microsoft.Web/serverfarms")
    _, site = only_resource("app/api.bicep", "Microsoft.Web/sites")
    config = body(site)
    assert config["kind"] == "functionapp,linux"
    props = config["properties"]
    assert accessor_path(props["serverFarmId"]) == f"{plan_name}.id"
    fac = props["functionAppConfig"]
    assert fac["runtime"] == {"name": "python", "version": "3.11"}
    assert fac["scaleAndConcurrency"] == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
    }
    assert param("app/api.bicep", "instanceMemoryMB")["default"] == 2048
    assert param("app/api.bicep", "maximumInstanceCount")["default"] == 100
    assert param("main.bicep", "instanceMemoryMB")["default"] == 2048
    assert param("main.bicep", "maximumInstanceCount")["default"] == 100


def test_runtime_version_is_one_the_code_supports() -> None:
    _, site = only_resource("app/api.bicep", "Microsoft.Web/sites")
    version = body(site)["properties"]["functionAppConfig"]["runtime"]["version"]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", requires)
    high = re.search(r"<\s*3\.(\d+)", requires)
    minor = int(version.split(".")[1])
    assert low and int(low.group(1)) <= minor, f"python {version} is below requires-python {requires}"
    assert high is None or minor < int(high.group(1)), f"python {version} is above requires-python {requires}"


def test_site_runs_as_the_user_assigned_identity_and_deploys_with_it() -> None:
    id_name, _ = only_resource("app/identity.bicep", "Microsoft.ManagedIdentity/userAssignedIdentities")
    # The identity module's `name` output is that identity's name, and main passes it on to the site's module.
    assert module("main.bicep", "identity")["detail"]["path"] == "app/identity.bicep"
    assert accessor_path(parsed("app/identity.bicep")["outputs"]["name"]["value"]) == f"{id_name}.name"
    existing = resources_of("app/api.bicep", "Microsoft.ManagedIdentity/userAssignedIdentities", existing=True)
    assert len(existing) == 1
    uami, uami_decl = next(iter(existing.items()))
    assert body(uami_decl)["name"] == "identityName"
    assert accessor_path(body(module("main.bicep", "api"))["params"]["identityName"]) == "identity.outputs.name"

    _, site = only_resource("app/api.bicep", "Microsoft.Web/sites")
    config = body(site)
    assert config["identity"]["type"] == "UserAssigned"
    keys = [k.strip("'") for k in config["identity"]["userAssignedIdentities"]]
    assert keys == [f"${{{uami}.id}}"]
    props = config["properties"]
    assert accessor_path(props["keyVaultReferenceIdentity"]) == f"{uami}.id"
    storage = props["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"].endswith("${deploymentContainerName}")
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert accessor_path(storage["authentication"]["userAssignedIdentityResourceId"]) == f"{uami}.id"


def test_site_is_https_only_with_tls12_and_no_ftp_or_basic_auth() -> None:
    _, site = only_resource("app/api.bicep", "Microsoft.Web/sites")
    props = body(site)["properties"]
    assert props["httpsOnly"] is True
    site_config = props["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    # no ftpsState: Flex Consumption does not support it (test_infra_first_deploy.py); FTP is off by policy below
    assert "*" not in strings(site_config.get("cors", {}))
    policies = resources_of("app/api.bicep", "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {"ftp": False, "scm": False}
    # azd finds the app to deploy to by this tag
    tags = {leaf.strip("'") for leaf in strings(body(site)["tags"])}
    assert {"azd-service-name", "api"} <= tags


# ---------------------------------------------------------------------------------------------------------------
# App settings
# ---------------------------------------------------------------------------------------------------------------
def test_every_contract_setting_and_identity_storage_setting_is_wired() -> None:
    settings = app_settings()
    missing = (CONTRACT_SETTINGS | STORAGE_IDENTITY_SETTINGS) - set(settings)
    assert not missing, f"app settings missing: {sorted(missing)}"


def test_no_forbidden_settings() -> None:
    settings = app_settings()
    # JOBS_ARM_TOKEN is for tests only; a plain AzureWebJobsStorage would be a connection string; Flex Consumption
    # rejects FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE etc.
    forbidden = {
        "JOBS_ARM_TOKEN",
        "AzureWebJobsStorage",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "APPINSIGHTS_INSTRUMENTATIONKEY",
    }
    assert not forbidden & set(settings)
    assert not any("JOBS_ARM_TOKEN" in source(rel) for rel in bicep_files())


def test_storage_and_sdk_settings_use_the_managed_identity() -> None:
    settings = app_settings()
    uami = next(iter(resources_of("app/api.bicep", "Microsoft.ManagedIdentity/userAssignedIdentities", existing=True)))
    storage = next(iter(resources_of("app/api.bicep", "Microsoft.Storage/storageAccounts", existing=True)))
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert accessor_path(settings["AzureWebJobsStorage__clientId"]) == f"{uami}.properties.clientId"
    assert accessor_path(settings["AZURE_CLIENT_ID"]) == f"{uami}.properties.clientId"
    assert accessor_path(settings["AzureWebJobsStorage__accountName"]) == f"{storage}.name"
    for service in ("blob", "queue", "table"):
        value = settings[f"AzureWebJobsStorage__{service}ServiceUri"]
        assert accessor_path(value) == f"{storage}.properties.primaryEndpoints.{service}"


def test_application_insights_settings_use_entra_id() -> None:
    settings = app_settings()
    uami = next(iter(resources_of("app/api.bicep", "Microsoft.ManagedIdentity/userAssignedIdentities", existing=True)))
    appi = next(iter(resources_of("app/api.bicep", "Microsoft.Insights/components", existing=True)))
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        f"ClientId=${{{uami}.properties.clientId}};Authorization=AAD"
    )
    assert accessor_path(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == f"{appi}.properties.ConnectionString"


def test_setting_values_follow_the_contract() -> None:
    settings = app_settings()
    api_call = body(module("main.bicep", "api"))["params"]
    # queue and table names: main's variables -> api params -> settings
    for setting, api_param, main_var, expected in (
        ("JOBS_INTAKE_QUEUE", "intakeQueueName", "intakeQueueName", "backup-jobs"),
        ("JOBS_RESULTS_QUEUE", "resultsQueueName", "resultsQueueName", "backup-job-results"),
        ("JOBS_TABLE", "tableName", "tableName", "backupjobs"),
    ):
        assert settings[setting] == api_param
        assert api_call[api_param] == main_var
        assert variable("main.bicep", main_var) == expected
    # tunables: main params (with the contract's defaults) -> api params -> settings
    for setting, api_param, main_param, default in (
        ("JOBS_WEBHOOK_URLS", "webhookUrls", "webhookUrls", ""),
        ("JOBS_CALLBACK_ALLOWED_HOSTS", "callbackAllowedHosts", "callbackAllowedHosts", ""),
        ("JOBS_ARM_API_VERSION", "armApiVersion", "armApiVersion", "2025-08-01"),
        ("JOBS_CRR_API_VERSION", "crrApiVersion", "crrApiVersion", "2023-01-15"),
        ("JOBS_POLL_SECONDS", "pollSeconds", "pollSeconds", 30),
        ("JOBS_MAX_TRACKING_HOURS", "maxTrackingHours", "maxTrackingHours", "72"),
    ):
        value = settings[setting]
        if isinstance(default, int):
            assert value == {"function": {"type": "string", "parameters": {"value_to_convert": api_param}}}
        else:
            assert value == api_param
        assert api_call[api_param] == main_param
        assert param("main.bicep", main_param)["default"] == default


def test_arm_endpoint_follows_the_cloud_without_trailing_slash() -> None:
    settings = app_settings()
    assert settings["ARM_ENDPOINT"] == "armEndpoint"
    expr = variable("app/api.bicep", "armEndpoint")
    text = json.dumps(expr)
    assert '"type": "environment"' in text and '"resourceManager"' in text
    operands = expr["operator"]["operands"]
    assert expr["operator"]["type"] == "conditional"
    assert operands["condition"]["function"]["type"] == "ends_with"
    assert operands["condition"]["function"]["parameters"]["string_to_find"] == "/"
    assert operands["true_value"]["function"]["type"] == "substring"
    assert "management.azure.com" not in "".join(source(rel) for rel in bicep_files())


def test_webhook_secret_is_secure_or_a_key_vault_reference() -> None:
    for rel in ("main.bicep", "app/api.bicep"):
        secret = param(rel, "webhookSecret")
        assert "secure" in decorator_types(secret), f"{rel}: webhookSecret is not @secure()"
        assert secret.get("default", "") == ""
    # every parameter that may carry a secret is @secure()
    for rel in bicep_files():
        for name, decl in parsed(rel)["parameters"].items():
            if re.search(r"secret|password|token|key$", name, re.I) and not re.search(r"(Uri|Id)$", name):
                assert "secure" in decorator_types(decl), f"{rel}: parameter {name} should be @secure()"
    settings = app_settings()
    assert settings["JOBS_WEBHOOK_SECRET"] == "webhookSecretValue"
    expr = variable("app/api.bicep", "webhookSecretValue")
    values = strings(expr)
    assert "@Microsoft.KeyVault(SecretUri=${webhookSecretKeyVaultSecretUri})" in values
    assert "webhookSecret" in values
    api_call = body(module("main.bicep", "api"))["params"]
    assert api_call["webhookSecret"] == "webhookSecret"
    assert api_call["webhookSecretKeyVaultSecretUri"] == "webhookSecretKeyVaultSecretUri"


def test_key_vault_secrets_user_is_granted_when_the_vault_is_named() -> None:
    rel = "app/keyvault-secrets-user.bicep"
    (assignment,) = role_assignments(rel).values()
    assert role_id_of(rel, assignment) == KEY_VAULT_SECRETS_USER
    ((vault_name, vault),) = resources_of(rel, "Microsoft.KeyVault/vaults", existing=True).items()
    assert body(assignment)["scope"] == vault_name
    assert body(vault)["name"] == "keyVaultName"
    call = module("main.bicep", "webhookSecretAccess")
    assert "webhookSecretKeyVaultId" in strings(call["config"]["condition"])
    assert body(call)["scope"]["function"]["type"] == "resource_group"
    assert accessor_path(body(call)["params"]["principalId"]) == "identity.outputs.principalId"


# ---------------------------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------------------------
def test_storage_account_is_entra_only_https_tls12_private_blobs() -> None:
    _, account = only_resource("app/storage.bicep", "Microsoft.Storage/storageAccounts")
    config = body(account)
    props = config["properties"]
    assert config["kind"] == "StorageV2"
    assert props["allowSharedKeyAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True
    (container,) = resources_of(
        "app/storage.bicep", "Microsoft.Storage/storageAccounts/blobServices/containers"
    ).values()
    assert body(container)["properties"]["publicAccess"] == "None"
    assert body(container)["name"] == "deploymentContainerName"


@pytest.mark.parametrize("rel", [*bicep_files(), "main.parameters.json"])
def test_no_keys_or_connection_strings_anywhere(rel: str) -> None:
    text = (INFRA / rel).read_text(encoding="utf-8")
    for needle in (
        "AccountKey",
        "listKeys(",
        "listKeys (",
        "listConnectionStrings",
        "listAccountSas",
        "listServiceSas",
        "DefaultEndpointsProtocol",
        "SharedAccessSignature",
        "InstrumentationKey",
        "allowSharedKeyAccess: true",
    ):
        assert needle not in text, f"{rel} contains {needle}"


def test_every_queue_and_the_table_are_created() -> None:
    assert set(variable("main.bicep", "queueNames")) == QUEUES
    storage_call = body(module("main.bicep", "storage"))["params"]
    assert storage_call["queueNames"] == "queueNames"
    assert storage_call["tableName"] == "tableName"
    assert variable("main.bicep", "tableName") == "backupjobs"

    service_name, _ = only_resource("app/storage.bicep", "Microsoft.Storage/storageAccounts/queueServices")
    ((_, queues),) = resources_of("app/storage.bicep", "Microsoft.Storage/storageAccounts/queueServices/queues").items()
    loop = queues["config"]["loop_type"]
    assert loop["detail"]["array_name"] == "queueNames"
    assert body(queues)["name"] == loop["detail"]["item_name"]
    assert body(queues)["parent"] == service_name
    table_service, _ = only_resource("app/storage.bicep", "Microsoft.Storage/storageAccounts/tableServices")
    ((_, table),) = resources_of("app/storage.bicep", "Microsoft.Storage/storageAccounts/tableServices/tables").items()
    assert body(table)["name"] == "tableName"
    assert body(table)["parent"] == table_service


# ---------------------------------------------------------------------------------------------------------------
# Role assignments
# ---------------------------------------------------------------------------------------------------------------
def test_storage_and_monitoring_roles_for_the_identity_on_the_right_resources() -> None:
    rel = "app/rbac.bicep"
    (storage,) = resources_of(rel, "Microsoft.Storage/storageAccounts", existing=True)
    (appi,) = resources_of(rel, "Microsoft.Insights/components", existing=True)
    granted = {}
    for assignment in role_assignments(rel).values():
        props = body(assignment)["properties"]
        if props["principalId"] == "identityPrincipalId":
            assert props["principalType"] == "ServicePrincipal"
            assert "condition" not in assignment["config"], "the identity's roles must not be optional"
            granted[role_id_of(rel, assignment)] = body(assignment)["scope"]
    assert granted == {
        BLOB_DATA_OWNER: storage,
        QUEUE_DATA_CONTRIBUTOR: storage,
        TABLE_DATA_CONTRIBUTOR: storage,
        MONITORING_METRICS_PUBLISHER: appi,
    }
    call = body(module("main.bicep", "rbac"))["params"]
    assert accessor_path(call["identityPrincipalId"]) == "identity.outputs.principalId"
    assert accessor_path(call["storageAccountName"]) == "storage.outputs.name"
    assert accessor_path(call["applicationInsightsName"]) == "monitoring.outputs.applicationInsightsName"


def test_developer_roles_are_optional_and_least_privilege() -> None:
    rel = "app/rbac.bicep"
    user_roles = set()
    for assignment in role_assignments(rel).values():
        props = body(assignment)["properties"]
        if props["principalId"] == "userPrincipalId":
            assert "userPrincipalId" in strings(assignment["config"]["condition"])
            user_roles.add(role_id_of(rel, assignment))
    assert user_roles == {QUEUE_DATA_CONTRIBUTOR, TABLE_DATA_CONTRIBUTOR}
    assert param("main.bicep", "principalId")["default"] == ""
    assert body(module("main.bicep", "rbac"))["params"]["userPrincipalId"] == "principalId"


@pytest.mark.parametrize("rel", FILES_WITH_ROLE_ASSIGNMENTS)
def test_role_assignment_names_are_deterministic(rel: str) -> None:
    assignments = role_assignments(rel)
    assert assignments, f"{rel}: no role assignments found to check"
    for name, assignment in assignments.items():
        assert body(assignment)["name"]["function"]["type"] == "guid", f"{rel}: {name} name is not guid(...)"


def test_backup_reader_modules_assign_the_role_at_their_scope() -> None:
    # a subscription
    rel = "app/backup-reader-subscription.bicep"
    assert target_scope(rel) == "subscription"
    (assignment,) = role_assignments(rel).values()
    assert role_id_of(rel, assignment) == BACKUP_READER
    assert "scope" not in body(assignment)
    # a resource group
    rel = "app/backup-reader-resource-group.bicep"
    assert target_scope(rel) == "resourceGroup"
    (assignment,) = role_assignments(rel).values()
    assert role_id_of(rel, assignment) == BACKUP_READER
    assert "scope" not in body(assignment)
    # a vault, as an existing resource of its resource group
    rel = "app/backup-reader-vault.bicep"
    assert target_scope(rel) == "resourceGroup"
    ((vault_name, vault),) = resources_of(rel, "Microsoft.RecoveryServices/vaults", existing=True).items()
    assert body(vault)["name"] == "vaultName"
    (assignment,) = role_assignments(rel).values()
    assert role_id_of(rel, assignment) == BACKUP_READER
    assert body(assignment)["scope"] == vault_name
    for rel in (
        "app/backup-reader-subscription.bicep",
        "app/backup-reader-resource-group.bicep",
        "app/backup-reader-vault.bicep",
    ):
        (assignment,) = role_assignments(rel).values()
        assert body(assignment)["properties"]["principalId"] == "principalId"
        assert body(assignment)["properties"]["principalType"] == "ServicePrincipal"


def test_backup_reader_is_deployed_to_every_listed_scope() -> None:
    assert param("main.bicep", "backupReaderScopes")["type"] == "array"
    assert param("main.bicep", "backupReaderScopes")["default"] == []
    # both parameters feed the entries that become the (cleaned) scope list
    entries = variable("main.bicep", "backupReaderScopeEntries")
    assert {"backupReaderScopes", "backupReaderScopesCsv"} <= strings(entries["loop_type"])
    assert "backupReaderScopeTrimmed" in strings(variable("main.bicep", "backupReaderScopeList"))
    targets = parsed("main.bicep")["variables"]["backupReaderTargets"]["value"]
    assert targets["loop_type"]["detail"]["array_name"] == "backupReaderScopeList"
    assert {"kind", "subscriptionId", "resourceGroupSubscriptionId", "resourceGroupName", "vaultName"} <= set(
        targets["config"]
    )

    expected = {
        "backupReaderOnSubscription": ("app/backup-reader-subscription.bicep", "subscription", "subscription"),
        "backupReaderOnResourceGroup": ("app/backup-reader-resource-group.bicep", "resource_group", "resourceGroup"),
        "backupReaderOnVault": ("app/backup-reader-vault.bicep", "resource_group", "vault"),
        "backupReaderOnBackupVault": ("app/backup-reader-backup-vault.bicep", "resource_group", "backupVault"),
    }
    for name, (path, scope_function, kind) in expected.items():
        mod = module("main.bicep", name)
        assert mod["detail"]["path"] == path
        loop = mod["config"]["loop_type"]
        assert loop["detail"]["array_name"] == "backupReaderScopeList", f"{name} does not loop over the scopes"
        condition = strings(mod["config"]["condition"])
        assert {"backupReaderTargets", kind} <= condition, f"{name} is not limited to {kind} scopes"
        config = body(mod)
        scope = config["scope"]["function"]
        assert scope["type"] == scope_function
        assert "backupReaderTargets" in strings(scope["parameters"]), f"{name} is not deployed at the listed scope"
        assert accessor_path(config["params"]["principalId"]) == "identity.outputs.principalId"
    vault_params = body(module("main.bicep", "backupReaderOnVault"))["params"]
    assert "vaultName" in strings(vault_params["vaultName"])


# ---------------------------------------------------------------------------------------------------------------
# Monitoring, outputs
# ---------------------------------------------------------------------------------------------------------------
def test_application_insights_takes_entra_id_auth_only_on_a_workspace() -> None:
    workspace, _ = only_resource("app/monitoring.bicep", "Microsoft.OperationalInsights/workspaces")
    _, appi = only_resource("app/monitoring.bicep", "Microsoft.Insights/components")
    props = body(appi)["properties"]
    assert props["DisableLocalAuth"] is True
    assert accessor_path(props["WorkspaceResourceId"]) == f"{workspace}.id"


SECRETISH = re.compile(r"secret|password|passwd|key|connectionstring|sas\b|token|credential", re.I)


@pytest.mark.parametrize("rel", FILES_WITH_OUTPUTS)
def test_no_output_carries_a_secret(rel: str) -> None:
    outputs = outputs_of(rel)
    assert outputs, f"{rel}: no outputs found to check"
    for name, output in outputs.items():
        assert not SECRETISH.search(name), f"{rel}: output {name}"
        for leaf in strings(output.get("value")):
            assert not SECRETISH.search(leaf), f"{rel}: output {name} reads {leaf}"
        assert "secure" not in decorator_types(output)


# ---------------------------------------------------------------------------------------------------------------
# azure.yaml, parameters file, .funcignore
# ---------------------------------------------------------------------------------------------------------------
def simple_yaml(text: str) -> dict[str, Any]:
    """Nested `key: value` mappings, which is all azure.yaml uses (no PyYAML in the tool venv)."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key] = value.strip().strip("'\"")
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def test_azure_yaml_deploys_the_root_as_a_python_function_app() -> None:
    doc = simple_yaml((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert doc["name"]
    api = doc["services"]["api"]
    assert api == {"project": "./", "language": "python", "host": "function"}
    assert doc.get("infra", {}).get("path", "infra") == "infra"
    assert doc.get("infra", {}).get("module", "main") == "main"


def test_parameters_file_maps_azd_variables_to_main_parameters() -> None:
    doc = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    values = {name: entry["value"] for name, entry in doc["parameters"].items()}
    declared = parsed("main.bicep")["parameters"]
    assert set(values) <= set(declared), f"unknown parameters: {set(values) - set(declared)}"
    required = {name for name, d in declared.items() if "default" not in d}
    assert required <= set(values)
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["location"] == "${AZURE_LOCATION}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID}"
    # nothing literal in the file: every value comes from the azd environment
    for name, value in values.items():
        assert isinstance(value, str) and re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", value), f"{name}: {value!r}"
    assert re.fullmatch(r"\$\{JOBS_WEBHOOK_SECRET\}", values["webhookSecret"])


def test_funcignore_keeps_tooling_out_of_the_package() -> None:
    lines = {
        line.strip().rstrip("/")
        for line in (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (
        "tests",
        "infra",
        ".venv*",
        "node_modules",
        ".git",
        "local.settings.json",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "Makefile",
        "package*.json",
        "devtools",
    ):
        assert entry.rstrip("/") in lines, f".funcignore misses {entry}"
    for kept in ("function_app.py", "host.json", "requirements.txt", "jobs"):
        assert kept not in lines, f".funcignore drops {kept}, which the app needs"
