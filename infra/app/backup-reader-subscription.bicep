// Backup Reader for the tracker's identity on a whole subscription (deployed at that subscription's scope).
targetScope = 'subscription'

var backupReaderRoleId = 'a795c7a0-d4a2-40c1-ae25-d81f01202912' // Backup Reader

@description('Principal (object) id of the tracker\'s managed identity.')
param principalId string

resource backupReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, backupReaderRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', backupReaderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
