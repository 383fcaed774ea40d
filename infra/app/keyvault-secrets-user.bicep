// Key Vault Secrets User for the tracker's identity on the vault that holds JOBS_WEBHOOK_SECRET, so that the
// app setting can be a Key Vault reference (@Microsoft.KeyVault(SecretUri=...)). Deployed at the vault's
// resource group. The vault must use Azure RBAC (enableRbacAuthorization); with access policies, give the
// identity "Get" on secrets instead.
targetScope = 'resourceGroup'

var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User

@description('Name of the Key Vault (in this resource group).')
param keyVaultName string

@description('Principal (object) id of the tracker\'s managed identity.')
param principalId string

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, keyVaultSecretsUserRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
