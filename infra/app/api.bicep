// The tracker: a Flex Consumption (FC1) plan and a Python 3.11 function app that runs as the user-assigned
// managed identity. Storage is reached through identity-based connections (AzureWebJobsStorage__*), telemetry
// goes to Application Insights with Entra ID auth, and every setting of the contract is wired here.
@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region.')
param location string = resourceGroup().location

@description('Tags (the app also gets azd-service-name: api).')
param tags object = {}

@description('Name of the user-assigned managed identity the app runs as.')
param identityName string

@description('Name of the storage account (host storage, deployment package, queues, table).')
param storageAccountName string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound of scale-out.')
param maximumInstanceCount int = 100

@description('JOBS_INTAKE_QUEUE.')
param intakeQueueName string = 'backup-jobs'

@description('JOBS_RESULTS_QUEUE.')
param resultsQueueName string = 'backup-job-results'

@description('JOBS_TABLE.')
param tableName string = 'backupjobs'

@description('JOBS_WEBHOOK_URLS (comma-separated). Empty = not set.')
param webhookUrls string = ''

@secure()
@description('JOBS_WEBHOOK_SECRET. Empty = not set (unless webhookSecretKeyVaultSecretUri is given).')
param webhookSecret string = ''

@description('Key Vault secret URI for JOBS_WEBHOOK_SECRET; wins over webhookSecret.')
param webhookSecretKeyVaultSecretUri string = ''

@description('JOBS_CALLBACK_ALLOWED_HOSTS (comma-separated). Empty = not set.')
param callbackAllowedHosts string = ''

@minValue(1)
@description('JOBS_POLL_SECONDS.')
param pollSeconds int = 30

@minLength(1)
@description('JOBS_MAX_TRACKING_HOURS, passed as is: decimals are allowed (0.5), which a Bicep int cannot hold.')
param maxTrackingHours string = '72'

@description('JOBS_ARM_API_VERSION.')
param armApiVersion string = '2025-08-01'

@description('JOBS_CRR_API_VERSION.')
param crrApiVersion string = '2023-01-15'

@description('JOBS_EVENTGRID_TOPIC_ENDPOINT: the Event Grid topic that receives every result event. Empty = not set.')
param eventGridTopicEndpoint string = ''

@description('More app settings, name -> value. They win over the tracker settings above but never replace the identity, storage or telemetry settings (platformAppSettingNames).')
param extraAppSettings object = {}

@description('More app settings as NAME=value entries separated by semicolons; an entry wins over the same name in extraAppSettings.')
param extraAppSettingsText string = ''

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Resource Manager endpoint of the cloud this is deployed to (public, sovereign), without the trailing slash.
var armEndpoint = endsWith(environment().resourceManager, '/') ? substring(environment().resourceManager, 0, length(environment().resourceManager) - 1) : environment().resourceManager

// The webhook secret: a Key Vault reference when a secret URI is given (resolved by the platform with the
// identity named in keyVaultReferenceIdentity), else the secure parameter. Not set at all when neither is.
var webhookSecretValue = empty(webhookSecretKeyVaultSecretUri) ? webhookSecret : '@Microsoft.KeyVault(SecretUri=${webhookSecretKeyVaultSecretUri})'

// The platform wiring: host storage, the identity, telemetry. extraAppSettings cannot replace these.
var platformAppSettings = [
  // Host and app storage, identity-based: no connection string, no key.
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccount.name
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageAccount.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storageAccount.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storageAccount.properties.primaryEndpoints.table
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  // DefaultAzureCredential (Resource Manager calls) picks the user-assigned identity through this.
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  // Telemetry with Entra ID auth: the connection string carries no secret once local auth is disabled.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
]
// Their names, written out: a for-expression over platformAppSettings would need values (the storage endpoints)
// that exist only once the deployment runs.
var platformAppSettingNames = [
  'AzureWebJobsStorage__accountName'
  'AzureWebJobsStorage__blobServiceUri'
  'AzureWebJobsStorage__queueServiceUri'
  'AzureWebJobsStorage__tableServiceUri'
  'AzureWebJobsStorage__credential'
  'AzureWebJobsStorage__clientId'
  'AZURE_CLIENT_ID'
  'APPLICATIONINSIGHTS_CONNECTION_STRING'
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
]

// The tracker's own settings (CONTRACT.md), from the parameters.
var trackerAppSettings = [
  {
    name: 'JOBS_INTAKE_QUEUE'
    value: intakeQueueName
  }
  {
    name: 'JOBS_RESULTS_QUEUE'
    value: resultsQueueName
  }
  {
    name: 'JOBS_TABLE'
    value: tableName
  }
  {
    name: 'JOBS_POLL_SECONDS'
    value: string(pollSeconds)
  }
  {
    name: 'JOBS_MAX_TRACKING_HOURS'
    value: maxTrackingHours
  }
  {
    name: 'ARM_ENDPOINT'
    value: armEndpoint
  }
  {
    name: 'JOBS_ARM_API_VERSION'
    value: armApiVersion
  }
  {
    name: 'JOBS_CRR_API_VERSION'
    value: crrApiVersion
  }
]

// Optional settings are left out when empty: an absent setting means "none" in the contract.
var webhookUrlsSetting = empty(webhookUrls) ? [] : [
  {
    name: 'JOBS_WEBHOOK_URLS'
    value: webhookUrls
  }
]
var callbackAllowedHostsSetting = empty(callbackAllowedHosts) ? [] : [
  {
    name: 'JOBS_CALLBACK_ALLOWED_HOSTS'
    value: callbackAllowedHosts
  }
]
var eventGridTopicSetting = empty(eventGridTopicEndpoint) ? [] : [
  {
    name: 'JOBS_EVENTGRID_TOPIC_ENDPOINT'
    value: eventGridTopicEndpoint
  }
]
var webhookSecretSetting = empty(webhookSecretValue) ? [] : [
  {
    name: 'JOBS_WEBHOOK_SECRET'
    value: webhookSecretValue
  }
]

// Every other setting (the README's table): extraAppSettings as name/value pairs, and extraAppSettingsText's
// NAME=value entries (trimmed, empty ones skipped; an entry without a name stops the deployment). fail() sits
// inside an interpolation because checkov's pycep-parser 0.5.1 cannot read a bare fail() call.
var extraAppSettingsFromObject = [for setting in items(extraAppSettings): {
  name: setting.key
  value: string(setting.value)
}]
var extraAppSettingsTextEntries = [for entry in split(extraAppSettingsText, ';'): trim(entry)]
var extraAppSettingsTextPairs = filter(extraAppSettingsTextEntries, entry => !empty(entry))
var extraAppSettingsFromText = [for entry in extraAppSettingsTextPairs: {
  name: (indexOf(entry, '=') > 0) ? trim(substring(entry, 0, indexOf(entry, '='))) : '${fail('JOBS_EXTRA_APP_SETTINGS / extraAppSettingsText: "${entry}" is not NAME=value (entries are separated by semicolons).')}'
  value: trim(substring(entry, indexOf(entry, '=') + 1))
}]
var extraAppSettingsFromTextNames = [for setting in extraAppSettingsFromText: setting.name]
var extraAppSettingsList = concat(filter(extraAppSettingsFromObject, setting => !contains(extraAppSettingsFromTextNames, setting.name)), extraAppSettingsFromText)
var extraAppSettingNames = [for setting in extraAppSettingsList: setting.name]

// What the app gets: the platform wiring; the tracker settings that extraAppSettings does not name (so an extra
// value wins, and JOBS_RESULTS_QUEUE: '' switches the results queue off); the extra settings, less any that
// would replace the platform wiring. An optional setting left empty is not set at all.
var keptTrackerAppSettings = filter(concat(trackerAppSettings, webhookUrlsSetting, callbackAllowedHostsSetting, webhookSecretSetting, eventGridTopicSetting), setting => !contains(extraAppSettingNames, setting.name))
var keptExtraAppSettings = filter(extraAppSettingsList, setting => !contains(platformAppSettingNames, setting.name))

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225:Flex Consumption (FC1) scales from zero on demand and zone redundancy for it is offered in some regions only, so a default that works in every Flex region leaves it off.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_17:The HTTP API's callers are Logic Apps and scripts with a function key, and a status URL must work with nothing but its own sig (a Logic App polling it sends no key and no client certificate); requiring client certificates (mutual TLS) would lock those callers out.
  #checkov:skip=CKV_AZURE_78:Flex Consumption does not support siteConfig.ftpsState (newer regions reject a site that sets it, ARM error 51021), so the template leaves it out; FTP is off through basicPublishingCredentialsPolicies (ftp and scm, allow false) below.
  #checkov:skip=CKV_AZURE_212:Flex Consumption has no fixed worker count (siteConfig.numberOfWorkers): it scales instances from zero up to maximumInstanceCount by itself.
  #checkov:skip=CKV_AZURE_213:The HTTP API's GET /api/health needs a function key (it names subscriptions whose reads fail), which the platform's health check probe cannot send; monitors call it with a key, and the Functions host scales and restarts instances from its triggers on Flex Consumption.
  #checkov:skip=CKV_AZURE_222:The HTTP API is called by Logic Apps (multi-tenant, from public addresses) and its status URLs and callbacks must be reachable from them; azd also deploys the package through the public endpoint (OneDeploy, Entra ID, basic auth off). Private endpoints and VNet integration are out of this template's scope.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      // No ftpsState: Flex Consumption does not support it (ARM error 51021 in newer regions). FTP is off through
      // the basicPublishingCredentialsPolicies below.
      http20Enabled: true
      cors: {
        allowedOrigins: []
      }
      appSettings: concat(platformAppSettings, keptTrackerAppSettings, keptExtraAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Basic-auth publishing (FTP and SCM) off: deployments use Entra ID (azd / OneDeploy).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output id string = functionApp.id
output uri string = 'https://${functionApp.properties.defaultHostName}'
