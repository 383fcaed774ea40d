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

@description('Resource ids that the tracker may read backup jobs from; each gets the Backup Reader role for the tracker\'s identity: a Recovery Services vault (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<vault>), a Backup vault (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.DataProtection/backupVaults/<vault>), a resource group (/subscriptions/<sub>/resourceGroups/<rg>) or a subscription (/subscriptions/<sub>), in any resource group or subscription. Entries are trimmed, a trailing slash is dropped, empty entries are skipped; anything else stops the deployment with a message that names it.')
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

@description('Create an Event Grid custom topic (CloudEvents 1.0, Entra ID only) that receives every result event: JOBS_EVENTGRID_TOPIC_ENDPOINT is set to it and the tracker\'s identity gets EventGrid Data Sender on it.')
param eventGridTopic bool = false

@description('JOBS_EVENTGRID_TOPIC_ENDPOINT of a topic you already have (ignored when eventGridTopic is true). Grant the tracker\'s identity EventGrid Data Sender on it yourself. Empty = none.')
param eventGridTopicEndpoint string = ''

@description('JOBS_CALLBACK_ALLOWED_HOSTS: comma-separated hosts that a per-job callbackUrl may name. Empty = no per-job callbacks.')
param callbackAllowedHosts string = ''

@minValue(1)
@description('JOBS_POLL_SECONDS: how often the poll round runs, in seconds.')
param pollSeconds int = 30

@minLength(1)
@description('JOBS_MAX_TRACKING_HOURS: a job still running after this many hours is reported as TimedOut. A string, passed as is, because decimals are allowed (0.5) and a Bicep int cannot hold them; the app validates it at start-up.')
param maxTrackingHours string = '72'

@description('JOBS_ARM_API_VERSION: api-version for the Recovery Services calls.')
param armApiVersion string = '2025-08-01'

@description('JOBS_CRR_API_VERSION: api-version for the cross-region restore calls (the passive stamp).')
param crrApiVersion string = '2023-01-15'

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Replication of the storage account that holds the queues, the job table and the deployment package. The default, Standard_LRS, is offered in every region; Standard_ZRS (zone-redundant) only where the region has availability zones.')
param storageSkuName string = 'Standard_LRS'

@description('More app settings, name -> value (e.g. {"JOBS_LOG_LEVEL": "DEBUG", "JOBS_LIST_THRESHOLD": "5"}): any setting of the README\'s table that has no parameter of its own. They win over what the template sets for the tracker (JOBS_RESULTS_QUEUE: "" switches the results queue off) but never replace the identity, storage or telemetry settings. Not for secrets: this parameter is not @secure().')
param extraAppSettings object = {}

@description('The same as extraAppSettings as NAME=value entries separated by semicolons (for `azd env set JOBS_EXTRA_APP_SETTINGS "JOBS_LOG_LEVEL=DEBUG;JOBS_LIST_THRESHOLD=5"`). An entry here wins over the same name in extraAppSettings.')
param extraAppSettingsText string = ''

@description('Resource id of an action group the alert rules notify (failed results, TrackingFailed, dead-lettered deliveries, a refused credential; docs/operating.md). Empty: the rules fire in the portal only.')
param alertActionGroupId string = ''

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

// Backup Reader scopes: both parameters merged; every entry trimmed and without a trailing slash; empty entries
// (a trailing comma, ",,") dropped; exact duplicates removed (union).
var backupReaderScopeEntries = [for scopeId in concat(backupReaderScopes, split(backupReaderScopesCsv, ',')): trim(string(scopeId))]
var backupReaderScopeTrimmed = [for scopeId in backupReaderScopeEntries: endsWith(scopeId, '/') ? substring(scopeId, 0, length(scopeId) - 1) : scopeId]
var backupReaderScopeList = union(filter(backupReaderScopeTrimmed, scopeId => !empty(scopeId)), [])
// Each id's segments, padded so that every index below exists whatever the id's length, with every name
// (subscription id, resource group, vault) replaced by `*` (an empty name stays empty).
var backupReaderScopeSegments = [for scopeId in backupReaderScopeList: concat(split(scopeId, '/'), ['', '', '', '', '', '', '', '', ''])]
var backupReaderScopeStarred = [for (scopeId, i) in backupReaderScopeList: [
  backupReaderScopeSegments[i][0]
  backupReaderScopeSegments[i][1]
  empty(backupReaderScopeSegments[i][2]) ? '' : '*'
  backupReaderScopeSegments[i][3]
  empty(backupReaderScopeSegments[i][4]) ? '' : '*'
  backupReaderScopeSegments[i][5]
  backupReaderScopeSegments[i][6]
  backupReaderScopeSegments[i][7]
  empty(backupReaderScopeSegments[i][8]) ? '' : '*'
]]
// Each id's shape: those segments, as many as the id has, joined and lower-cased. `/subscriptions/*` is a
// subscription, `/subscriptions/*/resourcegroups/*` a resource group, and so on (see backupReaderTargets).
var backupReaderScopeShapes = [for (scopeId, i) in backupReaderScopeList: (length(split(scopeId, '/')) > 9) ? 'longer than a vault id' : toLower(join(take(backupReaderScopeStarred[i], length(split(scopeId, '/'))), '/'))]
// For every scope: its kind, its subscription, resource group and vault. An id of any other shape stops the
// deployment with a message that names it. (fail() sits inside an interpolation because checkov's pycep-parser
// 0.5.1 cannot read a bare fail() call and would drop this file from its scan; Bicep compiles both the same.)
// `if` in ARM only evaluates the branch it takes. A module whose condition is false still gets a valid scope (the
// tracker's own resource group), so nothing is deployed at a scope made of a bad id.
var backupReaderTargets = [for (scopeId, i) in backupReaderScopeList: {
  kind: backupReaderScopeShapes[i] == '/subscriptions/*' ? 'subscription' : (backupReaderScopeShapes[i] == '/subscriptions/*/resourcegroups/*' ? 'resourceGroup' : (backupReaderScopeShapes[i] == '/subscriptions/*/resourcegroups/*/providers/microsoft.recoveryservices/vaults/*' ? 'vault' : (backupReaderScopeShapes[i] == '/subscriptions/*/resourcegroups/*/providers/microsoft.dataprotection/backupvaults/*' ? 'backupVault' : '${fail('BACKUP_READER_SCOPES / backupReaderScopes: "${scopeId}" is not a scope the tracker can be given Backup Reader on. Give /subscriptions/<sub>, /subscriptions/<sub>/resourceGroups/<rg>, /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<vault> or /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.DataProtection/backupVaults/<vault>, separated by commas.')}')))
  subscriptionId: backupReaderScopeSegments[i][2]
  resourceGroupSubscriptionId: empty(backupReaderScopeSegments[i][4]) ? subscription().subscriptionId : backupReaderScopeSegments[i][2]
  resourceGroupName: empty(backupReaderScopeSegments[i][4]) ? appResourceGroupName : backupReaderScopeSegments[i][4]
  vaultName: backupReaderScopeSegments[i][8]
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

// Log search alerts on the tracker's own metrics (backupjobs.*), exported to Application Insights.
module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    namePrefix: 'alert-${resourceToken}'
    location: location
    tags: tags
    actionGroupId: alertActionGroupId
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

module eventGrid 'app/eventgrid.bicep' = if (eventGridTopic) {
  name: 'eventgrid'
  scope: rg
  params: {
    name: 'evgt-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
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
    eventGridTopicEndpoint: eventGridTopic ? eventGrid.outputs.endpoint : eventGridTopicEndpoint
    pollSeconds: pollSeconds
    maxTrackingHours: maxTrackingHours
    armApiVersion: armApiVersion
    crrApiVersion: crrApiVersion
    extraAppSettings: extraAppSettings
    extraAppSettingsText: extraAppSettingsText
  }
  // The app starts polling storage as soon as it runs: let its data roles exist first. And the platform resolves
  // the @Microsoft.KeyVault(...) reference of JOBS_WEBHOOK_SECRET when the site and its settings are created:
  // without Key Vault Secrets User by then, the app reads the reference text itself as the secret.
  // The Event Grid topic (when created) and its EventGrid Data Sender assignment come before the app too.
  dependsOn: [
    rbac
    webhookSecretAccess
    eventGrid
  ]
}

// Backup Reader for the tracker's identity on every listed scope, wherever it lives. One module per kind of
// scope; each entry of backupReaderScopeList deploys exactly one of them (an entry of no known kind has already
// stopped the deployment in backupReaderTargets). (`if(` without a space: pycep-parser
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

module backupReaderOnBackupVault 'app/backup-reader-backup-vault.bicep' = [for (scopeId, i) in backupReaderScopeList: if(backupReaderTargets[i].kind == 'backupVault') {
  name: take('backup-reader-bvault-${i}-${resourceToken}', 64)
  scope: resourceGroup(backupReaderTargets[i].resourceGroupSubscriptionId, backupReaderTargets[i].resourceGroupName)
  params: {
    backupVaultName: backupReaderTargets[i].vaultName
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
output JOBS_EVENTGRID_TOPIC_ENDPOINT string = eventGridTopic ? eventGrid.outputs.endpoint : eventGridTopicEndpoint
// How many scopes got Backup Reader: the post-provision hook (azure.yaml) warns when it is 0.
output BACKUP_READER_SCOPE_COUNT int = length(backupReaderScopeList)
