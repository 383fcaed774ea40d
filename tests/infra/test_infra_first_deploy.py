"""`azd up` succeeds the first time and carries every setting (issue 9, point 7), checked on the parsed templates.

Each test pins one finding of the review of infra/ against the Flex Consumption docs and quickstarts:
- no `siteConfig.ftpsState` (Flex rejects it; FTP stays off through basicPublishingCredentialsPolicies);
- the app is created only after Key Vault Secrets User on the webhook secret's vault;
- Backup Reader scopes are cleaned (trimmed, empties and trailing slashes dropped), Backup vaults
  (Microsoft.DataProtection) get their own module, and anything else stops the deployment with a clear message;
- the storage account defaults to Standard_LRS (ZRS allowed), which every region offers;
- every README setting can be set through `extraAppSettings` (and JOBS_EXTRA_APP_SETTINGS for azd), and
  maxTrackingHours takes decimals;
- checkov skip reasons say what is true today (queue and timer triggers, no HTTP API);
- azure.yaml's post-provision hook warns, with a ready command, when no Backup Reader scope was granted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_infra_templates import INFRA, REPO, body, module, param, parsed, source, variable

BACKUP_READER = "a795c7a0-d4a2-40c1-ae25-d81f01202912"

SKIP_COMMENT = re.compile(r"#checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")








def strings(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            found |= strings(value)
    elif isinstance(node, list):
        for item in node:
            found |= strings(item)
    elif isinstance(node, str):
        found.add(node)
    return found








def site() -> dict[str, Any]:
    resources = parsed("app/api.bicep")["resources"].values()
    (decl,) = (r for r in resources if r["type"] == "Microsoft.Web/sites" and not r["existing"])
    return decl


def parameters_file() -> dict[str, str]:
    doc = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    return {name: entry["value"] for name, entry in doc["parameters"].items()}


def skip_reasons() -> dict[tuple[str, str], str]:
    found = {}
    for path in INFRA.rglob("*.bicep"):
        for match in SKIP_COMMENT.finditer(path.read_text(encoding="utf-8")):
            found[(path.relative_to(INFRA).as_posix(), match.group(1))] = (match.group(2) or "").strip()
    return found


def references(node: Any, names: set[str]) -> set[str]:
    """Which of `names` an expression mentions (as a bare identifier or inside an interpolation)."""
    text = " ".join(strings(node))
    return {name for name in names if re.search(rf"\b{re.escape(name)}\b", text)}


# ---------------------------------------------------------------------------------------------------------------
# ftpsState
# ---------------------------------------------------------------------------------------------------------------
def test_site_config_has_no_ftps_state_and_ftp_stays_off_through_the_publishing_policy() -> None:
    site_config = body(site())["properties"]["siteConfig"]
    assert "ftpsState" not in site_config, "Flex Consumption does not support siteConfig.ftpsState (ARM error 51021)"
    assert not re.search(r"^\s*ftpsState\s*:", source("app/api.bicep"), re.M)
    policies = {
        body(r)["name"]: body(r)["properties"]["allow"]
        for r in parsed("app/api.bicep")["resources"].values()
        if r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert policies == {"ftp": False, "scm": False}
    # checkov's FTP check now has nothing to read: its skip says why, on the site
    reasons = {check: reason for (rel, check), reason in skip_reasons().items() if rel == "app/api.bicep"}
    assert "CKV_AZURE_78" in reasons, "the FTP check needs a skip that explains the missing ftpsState"
    reason = reasons["CKV_AZURE_78"]
    assert "Flex" in reason and "ftpsState" in reason and "basicPublishingCredentialsPolicies" in reason


# ---------------------------------------------------------------------------------------------------------------
# Key Vault Secrets User before the app
# ---------------------------------------------------------------------------------------------------------------
def test_the_app_is_created_after_key_vault_secrets_user_on_the_webhook_secret() -> None:
    api = body(module("main.bicep", "api"))
    depends = set(api.get("dependsOn", []))
    assert "webhookSecretAccess" in depends, (
        "the site (and its @Microsoft.KeyVault reference) must wait for the Key Vault Secrets User assignment"
    )
    assert "rbac" in depends


# ---------------------------------------------------------------------------------------------------------------
# Backup Reader scopes
# ---------------------------------------------------------------------------------------------------------------
def scope_pipeline_text() -> str:
    """Every variable of main.bicep that the scope list is built from, as one JSON text."""
    variables = parsed("main.bicep")["variables"]
    return json.dumps({name: v["value"] for name, v in variables.items() if name.startswith("backupReaderScope")})


def test_backup_reader_scopes_are_trimmed_and_empty_entries_and_trailing_slashes_dropped() -> None:
    text = scope_pipeline_text()
    assert '"trim"' in text, "scope entries are not trimmed"
    assert '"ends_with"' in text and '"string_to_find": "/"' in text, "a trailing slash is not removed"
    assert '"filter"' in text and '"empty"' in text, "empty entries (a trailing comma) are not dropped"
    # the list every module loops over is the cleaned one
    scope_list = variable("main.bicep", "backupReaderScopeList")
    assert scope_list["function"]["type"] in {"union", "filter"}
    for name in ("backupReaderOnSubscription", "backupReaderOnResourceGroup", "backupReaderOnVault"):
        assert module("main.bicep", name)["config"]["loop_type"]["detail"]["array_name"] == "backupReaderScopeList"
    output = parsed("main.bicep")["outputs"]["BACKUP_READER_SCOPE_COUNT"]
    assert "backupReaderScopeList" in strings(output["value"])


def kind_expression() -> Any:
    targets = variable("main.bicep", "backupReaderTargets")
    assert targets["loop_type"]["detail"]["array_name"] == "backupReaderScopeList"
    return targets["config"]["kind"]


def test_each_scope_kind_is_recognised_by_its_full_shape() -> None:
    literals = strings(kind_expression()) | strings(parsed("main.bicep")["variables"])
    expected_shapes = {
        "/subscriptions/*",
        "/subscriptions/*/resourcegroups/*",
        "/subscriptions/*/resourcegroups/*/providers/microsoft.recoveryservices/vaults/*",
        "/subscriptions/*/resourcegroups/*/providers/microsoft.dataprotection/backupvaults/*",
    }
    assert expected_shapes <= literals, f"shapes not matched: {sorted(expected_shapes - literals)}"
    kinds = strings(kind_expression())
    assert {"subscription", "resourceGroup", "vault", "backupVault"} <= kinds


def test_an_unrecognised_scope_stops_the_deployment_with_a_clear_message() -> None:
    # fail() sits inside an interpolation: pycep-parser 0.5.1 (checkov's) cannot read a bare fail() call.
    failures = [s for s in strings(kind_expression()) if "fail(" in s]
    assert failures, "an unknown scope must end in fail('...')"
    message = failures[0]
    assert "BACKUP_READER_SCOPES" in message and "${scopeId}" in message
    for form in ("Microsoft.RecoveryServices/vaults", "Microsoft.DataProtection/backupVaults", "resourceGroups"):
        assert form in message, f"the message should name the accepted form {form}"
    assert "fail(" in source("main.bicep")


def test_a_backup_vault_gets_backup_reader_on_itself() -> None:
    rel = "app/backup-reader-backup-vault.bicep"
    assert (INFRA / rel).is_file()
    resources = parsed(rel)["resources"]
    ((vault_name, vault),) = (
        (n, r) for n, r in resources.items() if r["type"] == "Microsoft.DataProtection/backupVaults" and r["existing"]
    )
    assert body(vault)["name"] == "backupVaultName"
    ((_, assignment),) = (
        (n, r) for n, r in resources.items() if r["type"] == "Microsoft.Authorization/roleAssignments"
    )
    config = body(assignment)
    assert config["scope"] == vault_name
    role = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    role = parsed(rel)["variables"].get(role, {}).get("value", role)
    assert role == BACKUP_READER
    assert config["properties"]["principalType"] == "ServicePrincipal"

    mod = module("main.bicep", "backupReaderOnBackupVault")
    assert mod["detail"]["path"] == rel
    assert mod["config"]["loop_type"]["detail"]["array_name"] == "backupReaderScopeList"
    assert {"backupReaderTargets", "backupVault"} <= strings(mod["config"]["condition"])
    call = body(mod)
    assert call["scope"]["function"]["type"] == "resource_group"
    assert "vaultName" in strings(call["params"]["backupVaultName"])


# ---------------------------------------------------------------------------------------------------------------
# Storage SKU
# ---------------------------------------------------------------------------------------------------------------
def test_storage_defaults_to_lrs_which_every_region_offers_with_zrs_allowed() -> None:
    for rel, name in (("main.bicep", "storageSkuName"), ("app/storage.bicep", "skuName")):
        decl = param(rel, name)
        assert decl["default"] == "Standard_LRS", f"{rel}: {name} must default to Standard_LRS"
        allowed = next(d for d in decl["decorators"] if d["type"] == "allowed")["argument"]
        assert {"Standard_LRS", "Standard_ZRS"} <= set(allowed)
    assert parameters_file()["storageSkuName"] == "${AZURE_STORAGE_SKU=Standard_LRS}"
    reason = skip_reasons()[("app/storage.bicep", "CKV_AZURE_206")]
    assert "Standard_LRS" in reason and "ZRS" in reason


# ---------------------------------------------------------------------------------------------------------------
# Every setting a parameter away
# ---------------------------------------------------------------------------------------------------------------
def test_extra_app_settings_are_an_object_parameter_wired_to_the_app() -> None:
    for rel in ("main.bicep", "app/api.bicep"):
        decl = param(rel, "extraAppSettings")
        assert decl["type"] == "object" and decl["default"] == {}
        text = param(rel, "extraAppSettingsText")
        assert text["type"] == "string" and text["default"] == ""
    call = body(module("main.bicep", "api"))["params"]
    assert call["extraAppSettings"] == "extraAppSettings"
    assert call["extraAppSettingsText"] == "extraAppSettingsText"
    assert parameters_file()["extraAppSettingsText"] == "${JOBS_EXTRA_APP_SETTINGS}"
    # the object becomes name/value pairs through items(), the text through NAME=value entries split on ';'
    assert "items(extraAppSettings)" in source("app/api.bicep")
    assert '"delimiter": ";"' in json.dumps(parsed("app/api.bicep")["variables"])


def test_extra_app_settings_override_the_tracker_settings_but_never_the_platform_wiring() -> None:
    app_settings = body(site())["properties"]["siteConfig"]["appSettings"]
    assert app_settings["function"]["type"] == "concat"
    args = list(app_settings["function"]["parameters"].values())
    assert args[0] == "platformAppSettings"
    # the tracker's own settings are dropped when extraAppSettings names them, so the extra value wins
    kept = variable("app/api.bicep", args[1]) if isinstance(args[1], str) else args[1]
    assert kept["function"]["type"] == "filter"
    assert "extraAppSettingNames" in strings(kept)
    # extra settings never replace identity, storage or telemetry settings
    extra = variable("app/api.bicep", args[2]) if isinstance(args[2], str) else args[2]
    assert extra["function"]["type"] == "filter"
    assert "platformAppSettingNames" in strings(extra)
    platform_names = set(variable("app/api.bicep", "platformAppSettingNames"))
    declared = {item["name"] for item in variable("app/api.bicep", "platformAppSettings")}
    assert platform_names == declared, "platformAppSettingNames drifted from platformAppSettings"


def test_max_tracking_hours_takes_decimals() -> None:
    for rel in ("main.bicep", "app/api.bicep"):
        decl = param(rel, "maxTrackingHours")
        assert decl["type"] == "string", f"{rel}: a Bicep int cannot hold 0.5 hours"
        assert decl["default"] == "72"
    tracker = variable("app/api.bicep", "trackerAppSettings")
    (setting,) = (s for s in tracker if s["name"] == "JOBS_MAX_TRACKING_HOURS")
    assert setting["value"] == "maxTrackingHours", "passed as is, not through string()/int()"
    assert parameters_file()["maxTrackingHours"] == "${JOBS_MAX_TRACKING_HOURS=72}"


def test_deploy_doc_says_portal_edits_do_not_survive_and_names_the_extra_settings() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    flat = " ".join(doc.split())
    assert re.search(r"portal[^.]*overwritten[^.]*next `?azd provision`?", flat, re.I), (
        "deploy.md must say that portal edits are overwritten at the next provision"
    )
    assert "JOBS_EXTRA_APP_SETTINGS" in doc and "extraAppSettings" in doc
    for setting in (
        "JOBS_NOT_FOUND_GRACE_SECONDS",
        "JOBS_MAX_POLL_INTERVAL_SECONDS",
        "JOBS_LIST_THRESHOLD",
        "JOBS_DELIVERY_RETRY_HOURS",
        "JOBS_DELIVERY_FIRST_RETRY_SECONDS",
        "JOBS_WEBHOOK_TIMEOUT_SECONDS",
        "JOBS_RESULTS_QUEUE",
        "JOBS_LOG_LEVEL",
    ):
        assert setting in doc, f"deploy.md does not say how to set {setting}"
    assert "Standard_ZRS` |" not in doc, "the storage default in deploy.md is still ZRS"


# ---------------------------------------------------------------------------------------------------------------
# checkov skip reasons
# ---------------------------------------------------------------------------------------------------------------
def test_checkov_skip_reasons_describe_the_app_as_it_is() -> None:
    reasons = skip_reasons()
    assert reasons
    stale = re.compile(r"only queue and timer triggers|no HTTP (function|endpoint)|no inbound request", re.I)
    for (rel, check), reason in reasons.items():
        assert not stale.search(reason), f"{rel} {check}: the skip says the app has no HTTP API: {reason}"
    for check in ("CKV_AZURE_17", "CKV_AZURE_213", "CKV_AZURE_222"):
        reason = reasons[("app/api.bicep", check)]
        assert "HTTP API" in reason, f"{check} should say why it does not fit the app's HTTP API"


# ---------------------------------------------------------------------------------------------------------------
# post-provision hook
# ---------------------------------------------------------------------------------------------------------------
def hook_scripts() -> dict[str, tuple[str, Path]]:
    text = (REPO / "azure.yaml").read_text(encoding="utf-8")
    match = re.search(r"^hooks:\n((?:[ \t]+.*\n?)+)", text, re.M)
    assert match, "azure.yaml has no hooks"
    block = match.group(1)
    post = re.search(r"^  postprovision:\n((?:    .*\n?)+)", block, re.M)
    assert post, "azure.yaml has no postprovision hook"
    found = {}
    for platform in ("posix", "windows"):
        section = re.search(rf"^    {platform}:\n((?:      .*\n?)+)", post.group(1), re.M)
        assert section, f"postprovision has no {platform} hook"
        shell = re.search(r"^\s+shell:\s*(\S+)", section.group(1), re.M)
        run = re.search(r"^\s+run:\s*(\S+)", section.group(1), re.M)
        assert shell and run
        found[platform] = (shell.group(1), REPO / run.group(1))
    return found


def test_azure_yaml_runs_a_post_provision_hook_on_posix_and_windows() -> None:
    hooks = hook_scripts()
    assert hooks["posix"][0] == "sh" and hooks["windows"][0] == "pwsh"
    for _shell, path in hooks.values():
        assert path.is_file(), f"hook script {path} missing"
        text = path.read_text(encoding="utf-8")
        for needle in (
            "BACKUP_READER_SCOPE_COUNT",
            "AZURE_TRACKER_IDENTITY_PRINCIPAL_ID",
            "az role assignment create",
            '--role "Backup Reader"',
            "--scope",
        ):
            assert needle in text, f"{path.name} does not mention {needle}"
    outputs = parsed("main.bicep")["outputs"]
    assert outputs["BACKUP_READER_SCOPE_COUNT"]["type"] == "int"
    assert "AZURE_TRACKER_IDENTITY_PRINCIPAL_ID" in outputs


def run_posix_hook(count: str) -> subprocess.CompletedProcess[str]:
    _, path = hook_scripts()["posix"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BACKUP_READER_SCOPE_COUNT": count,
        "AZURE_TRACKER_IDENTITY_PRINCIPAL_ID": "11111111-2222-3333-4444-555555555555",
    }
    return subprocess.run(["sh", str(path)], env=env, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_posix_hook_warns_with_a_ready_command_when_no_scope_was_granted() -> None:
    proc = run_posix_hook("0")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "WARNING" in out.upper()
    assert re.search(
        r'az role assignment create --assignee-object-id 11111111-2222-3333-4444-555555555555 '
        r'--assignee-principal-type ServicePrincipal --role "Backup Reader" --scope \S+',
        out,
    ), out


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_posix_hook_is_quiet_when_scopes_were_granted() -> None:
    proc = run_posix_hook("2")
    assert proc.returncode == 0, proc.stderr
    assert "az role assignment create" not in proc.stdout + proc.stderr
