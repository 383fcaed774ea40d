// Backup Job Tracker: one subscription-scope deployment that creates the resource group and everything in it.
//   azd up
//   az deployment sub create -l <location> -f infra/main.bicep -p environmentName=<name> location=<location> ...
// Every resource is a plain `resource` declaration (no registry modules) so that the template tests
// (pycep) and checkov can see it.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------------------
@minLength(1)
@maxLength(64)
@description('Name of the environment (azd environment name); it seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group to create. Default: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person (or pipeline) deploying: gets queue and table data roles on the tracker\'s storage so that `python -m jobs track/list` works against Azure. Empty = none.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal that principalId names.')
param principalType string = 'User'

@description('Resource ids that the tracker may read backup jobs from; each gets the Backup Reader role for the tracker\'s identity: a vault (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<vault>), a resource group (/subscriptions/<sub>/resourceGroups/<rg>) or a subscription (/subscriptions/<sub>), in any resource group or subscription.')
param backupReaderScopes array = []

@description('The same as backupReaderScopes, comma-separated (for `azd env set BACKUP_READER_SCOPES ...`). Both lists are merged.')
param backupReaderScopesCsv string = ''

@description('JOBS_WEBHOOK_URLS: comma-separated URLs that receive every result event. Empty = none.')
param webhookUrls string = ''

@secure()
@description('JOBS_WEBHOOK_SECRET: Standard Webhooks secret (whsec_ + base64). Empty = unsigned webhooks, unless webhookSecretKeyVaultSecretUri is given.')
param webhookSecret string = ''

@description('Key Vault secret URI (https://<vault>.vault.azure.net/secrets/<name>[/<version>]) holding JOBS_WEBHOOK_SECRET. When given it wins over webhookSecret and the app setting becomes a Key Vault reference.')
param webhookSecretKeyVaultSecretUri string = ''

@description('Resource id of the Key Vault that webhookSecretKeyVaultSecretUri points at. When given, the tracker\'s identity gets Key Vault Secrets User on it; otherwise grant that role yourself.')
param webhookSecretKeyVaultId string = ''

@description('JOBS_CALLBACK_ALLOWED_HOSTS: comma-separated hosts that a per-job callbackUrl may name. Empty = no per-job callbacks.')
param callbackAllowedHosts string = ''

@minValue(1)
@description('JOBS_POLL_SECONDS: how often the poll round runs, in seconds.')
param pollSeconds int = 30

@minValue(1)
@description('JOBS_MAX_TRACKING_HOURS: a job still running after this is reported as TimedOut.')
param maxTrackingHours int = 72

@description('JOBS_ARM_API_VERSION: api-version for the Recovery Services calls.')
param armApiVersion string = '2025-08-01'

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Replication of the storage account that holds the queues, the job table and the deployment package. Use Standard_LRS in a region without availability zones.')
param storageSkuName string = 'Standard_ZRS'

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound of Flex Consumption scale-out.')
param maximumInstanceCount int = 100

// ---------------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------------
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var appResourceGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

// The queues and the table the app uses (see CONTRACT.md). The Functions host creates the poison queues by
// itself, but creating every queue here means nothing depends on a first failure and all of them are visible.
var intakeQueueName = 'backup-jobs'
var resultsQueueName = 'backup-job-results'
var tableName = 'backupjobs'
var queueNames = [
  'backup-jobs'
  'backup-jobs-rejected'
  'backup-jobs-poison'
  'backup-jobs-poll'
  'backup-jobs-poll-poison'
  'backup-jobs-deliver'
  'backup-jobs-deliver-poison'
  'backup-job-results'
  'backup-job-results-deadletter'
]

// Backup Reader scopes: both parameters merged (union also drops exact duplicates). Resource ids hold no
// spaces, so removing them makes "a, b" work as well as "a,b".
var backupReaderScopeList = union(backupReaderScopes, empty(backupReaderScopesCsv) ? [] : split(replace(backupReaderScopesCsv, ' ', ''), ','))
// For every scope: its kind (by the number of segments of /subscriptions/<s>/resourceGroups/<rg>/providers/
// Microsoft.RecoveryServices/vaults/<v>), its subscription, resource group and vault. `if` in ARM only
// evaluates the branch it takes, so the index lookups never run past the end. A module whose condition is
// false still gets a valid scope (the tracker's own resource group), so nothing is evaluated on a bad one.
var backupReaderTargets = [for scopeId in backupReaderScopeList: {
  kind: length(split(scopeId, '/')) == 3 ? 'subscription' : (length(split(scopeId, '/')) == 5 ? 'resourceGroup' : 'vault')
  subscriptionId: length(split(scopeId, '/')) >= 3 ? split(scopeId, '/')[2] : subscription().subscriptionId
  resourceGroupSubscriptionId: length(split(scopeId, '/')) >= 5 ? split(scopeId, '/')[2] : subscription().subscriptionId
  resourceGroupName: length(split(scopeId, '/')) >= 5 ? split(scopeId, '/')[4] : appResourceGroupName
  vaultName: length(split(scopeId, '/')) >= 9 ? split(scopeId, '/')[8] : ''
}]

// The Key Vault that holds the webhook secret (optional), taken apart the same way.
var webhookSecretKeyVaultSegments = split(webhookSecretKeyVaultId, '/')
var webhookSecretKeyVaultSubscriptionId = length(webhookSecretKeyVaultSegments) >= 9 ? webhookSecretKeyVaultSegments[2] : subscription().subscriptionId
var webhookSecretKeyVaultResourceGroup = length(webhookSecretKeyVaultSegments) >= 9 ? webhookSecretKeyVaultSegments[4] : appResourceGroupName

// ---------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------
resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: appResourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
    tableName: tableName
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    intakeQueueName: intakeQueueName
    resultsQueueName: resultsQueueName
    tableName: tableName
    webhookUrls: webhookUrls
    webhookSecret: webhookSecret
    webhookSecretKeyVaultSecretUri: webhookSecretKeyVaultSecretUri
    callbackAllowedHosts: callbackAllowedHosts
    pollSeconds: pollSeconds
    maxTrackingHours: maxTrackingHours
    armApiVersion: armApiVersion
  }
  // The app starts polling storage as soon as it runs: let its data roles exist first.
  dependsOn: [
    rbac
  ]
}

// Backup Reader for the tracker's identity on every listed scope, wherever it lives. One module per kind of
// scope; each entry of backupReaderScopeList deploys exactly one of them. (`if(` without a space: pycep-parser
// 0.7.1, which the template tests use, reads a loop's condition only in that spelling; Bicep takes both.)
module backupReaderOnSubscription 'app/backup-reader-subscription.bicep' = [for (scopeId, i) in backupReaderScopeList: if(backupReaderTargets[i].kind == 'subscription') {
  name: take('backup-reader-sub-${i}-${resourceToken}', 64)
  scope: subscription(backupReaderTargets[i].subscriptionId)
  params: {
    principalId: identity.outputs.principalId
  }
}]

module backupReaderOnResourceGroup 'app/backup-reader-resource-group.bicep' = [for (scopeId, i) in backupReaderScopeList: if(backupReaderTargets[i].kind == 'resourceGroup') {
  name: take('backup-reader-rg-${i}-${resourceToken}', 64)
  scope: resourceGroup(backupReaderTargets[i].resourceGroupSubscriptionId, backupReaderTargets[i].resourceGroupName)
  params: {
    principalId: identity.outputs.principalId
  }
}]

module backupReaderOnVault 'app/backup-reader-vault.bicep' = [for (scopeId, i) in backupReaderScopeList: if(backupReaderTargets[i].kind == 'vault') {
  name: take('backup-reader-vault-${i}-${resourceToken}', 64)
  scope: resourceGroup(backupReaderTargets[i].resourceGroupSubscriptionId, backupReaderTargets[i].resourceGroupName)
  params: {
    vaultName: backupReaderTargets[i].vaultName
    principalId: identity.outputs.principalId
  }
}]

// Key Vault Secrets User on the vault that holds the webhook secret, when the vault's id is given.
module webhookSecretAccess 'app/keyvault-secrets-user.bicep' = if (!empty(webhookSecretKeyVaultId)) {
  name: take('webhook-secret-access-${resourceToken}', 64)
  scope: resourceGroup(webhookSecretKeyVaultSubscriptionId, webhookSecretKeyVaultResourceGroup)
  params: {
    keyVaultName: last(split(webhookSecretKeyVaultId, '/'))
    principalId: identity.outputs.principalId
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs (azd writes them to .azure/<env>/.env). Names and endpoints only: nothing secret.
// ---------------------------------------------------------------------------------------------------------------
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AZURE_TRACKER_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output JOBS_INTAKE_QUEUE string = intakeQueueName
output JOBS_RESULTS_QUEUE string = resultsQueueName
output JOBS_TABLE string = tableName
output BACKUP_READER_SCOPE_COUNT int = length(backupReaderScopeList)
