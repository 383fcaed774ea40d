// Backup Reader for the tracker's identity on one Backup vault (Microsoft.DataProtection/backupVaults: disks,
// blobs, PostgreSQL, AKS backups), deployed at the vault's resource group, which may be in another subscription.
// The built-in Backup Reader role covers Backup vaults as well as Recovery Services vaults.
targetScope = 'resourceGroup'

var backupReaderRoleId = 'a795c7a0-d4a2-40c1-ae25-d81f01202912' // Backup Reader

@description('Name of the Backup vault (in this resource group).')
param backupVaultName string

@description('Principal (object) id of the tracker\'s managed identity.')
param principalId string

resource backupVault 'Microsoft.DataProtection/backupVaults@2024-04-01' existing = {
  name: backupVaultName
}

resource backupReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(backupVault.id, principalId, backupReaderRoleId)
  scope: backupVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', backupReaderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
