# azd post-provision hook (azure.yaml): warn when the tracker's identity got Backup Reader on no scope.
# azd hands the environment's values (the template's outputs included) to hooks as environment variables.
# It only warns: the deployment itself succeeded, and the role can be granted at any time.
$count = if ($env:BACKUP_READER_SCOPE_COUNT) { $env:BACKUP_READER_SCOPE_COUNT } else { '0' }
$principal = if ($env:AZURE_TRACKER_IDENTITY_PRINCIPAL_ID) { $env:AZURE_TRACKER_IDENTITY_PRINCIPAL_ID } else { '<AZURE_TRACKER_IDENTITY_PRINCIPAL_ID>' }

if ($count -eq '0') {
    Write-Warning @"
the tracker was given Backup Reader on no vault, resource group or subscription (BACKUP_READER_SCOPES is
empty), so every job it is fed will end as BackupJob.NotFound. Either set the scopes and provision again:
  azd env set BACKUP_READER_SCOPES "<vault, resource group or subscription id>,..."; azd provision
or grant the role yourself (or ask the vault's owner to), for each vault:
  az role assignment create --assignee-object-id $principal --assignee-principal-type ServicePrincipal --role "Backup Reader" --scope <vault id>
(<vault id>: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<vault>, or a
Backup vault, a resource group or a subscription id.)
"@
}
exit 0
