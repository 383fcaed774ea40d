// The tracker's storage account: the Functions host (AzureWebJobsStorage), the Flex deployment package, the
// queues and the job table. Entra ID only: shared-key access is off, so there is no key or connection string
// to leak; the app and the host sign in with the managed identity (rbac.bicep grants the data roles).
@minLength(3)
@maxLength(24)
@description('Name of the storage account (3-24 lowercase letters and digits).')
param name string

@description('Region.')
param location string = resourceGroup().location

@description('Tags.')
param tags object = {}

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Replication. Standard_LRS is offered in every region; Standard_ZRS only in regions with availability zones.')
param skuName string = 'Standard_LRS'

@description('Blob container that Flex Consumption deploys the app package from.')
param deploymentContainerName string

@description('Queues to create.')
param queueNames array

@description('Table to create.')
param tableName string

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35:The Flex app reaches this account over its public endpoint (no VNet in this template); every request must carry an Entra ID token (shared keys off), so a deny-by-default firewall would only lock the app out.
  #checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: without VNet integration and private endpoints the public endpoint is how the app gets in; access is Entra ID only.
  #checkov:skip=CKV_AZURE_206:Replication is the storageSkuName parameter. The default, Standard_LRS, is offered in every region, so the first azd up works anywhere; Standard_ZRS (zone-redundant) and the geo-redundant SKUs are opt-in, because regions without availability zones reject ZRS and job state is short-lived.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource table 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: tableName
}

output name string = storageAccount.name
output id string = storageAccount.id
output blobEndpoint string = storageAccount.properties.primaryEndpoints.blob
output queueEndpoint string = storageAccount.properties.primaryEndpoints.queue
output tableEndpoint string = storageAccount.properties.primaryEndpoints.table
