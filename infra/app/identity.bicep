// The tracker's user-assigned managed identity: the app signs in to storage, Application Insights, Resource
// Manager (Backup Reader) and, optionally, Key Vault with it. No key or connection string anywhere.
@description('Name of the identity.')
param name string

@description('Region.')
param location string = resourceGroup().location

@description('Tags.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
