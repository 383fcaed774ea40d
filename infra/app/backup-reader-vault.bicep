// Backup Reader for the tracker's identity on one Recovery Services vault (deployed at the vault's resource
// group, which may be in another subscription).
targetScope = 'resourceGroup'

var backupReaderRoleId = 'a795c7a0-d4a2-40c1-ae25-d81f01202912' // Backup Reader

@description('Name of the Recovery Services vault (in this resource group).')
param vaultName string

@description('Principal (object) id of the tracker\'s managed identity.')
param principalId string

resource vault 'Microsoft.RecoveryServices/vaults@2023-04-01' existing = {
  name: vaultName
}

resource backupReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, backupReaderRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', backupReaderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
