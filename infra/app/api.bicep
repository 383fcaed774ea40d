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

@minValue(1)
@description('JOBS_MAX_TRACKING_HOURS.')
param maxTrackingHours int = 72

@description('JOBS_ARM_API_VERSION.')
param armApiVersion string = '2025-08-01'

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

var baseAppSettings = [
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
  // The tracker's own settings (CONTRACT.md).
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
    value: string(maxTrackingHours)
  }
  {
    name: 'ARM_ENDPOINT'
    value: armEndpoint
  }
  {
    name: 'JOBS_ARM_API_VERSION'
    value: armApiVersion
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
var webhookSecretSetting = empty(webhookSecretValue) ? [] : [
  {
    name: 'JOBS_WEBHOOK_SECRET'
    value: webhookSecretValue
  }
]

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
  #checkov:skip=CKV_AZURE_17:The HTTP API (POST/GET/DELETE /api/jobs) is called by Logic Apps and scripts with function keys; requiring client certificates (mutual TLS) would lock those callers out.
  #checkov:skip=CKV_AZURE_212:Flex Consumption has no fixed worker count (siteConfig.numberOfWorkers): it scales instances from zero up to maximumInstanceCount by itself.
  #checkov:skip=CKV_AZURE_213:Platform health check probes call the path without a function key, so the function-key protected /api/health would answer them 401 and every instance would look unhealthy; /api/health is for monitors that hold a key.
  #checkov:skip=CKV_AZURE_222:The HTTP API and its callers (Logic Apps, webhooks' subscribe calls) are on the internet and authenticate with function keys; private endpoints are out of this template's scope.
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
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: []
      }
      appSettings: concat(baseAppSettings, webhookUrlsSetting, callbackAllowedHostsSetting, webhookSecretSetting)
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
