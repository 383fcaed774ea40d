// The Event Grid custom topic that receives every result event (optional: main.bicep's eventGridTopic), and
// EventGrid Data Sender on it for the tracker's identity. The app publishes with that identity, so the topic
// takes Entra ID only (local auth, the access keys, disabled). Subscribe your handlers to it (Functions, Logic
// Apps, Service Bus, Event Hubs, webhooks) with `az eventgrid event-subscription create --source-resource-id <id>`.
targetScope = 'resourceGroup'

var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender

@description('Name of the topic.')
param name string

@description('Location of the topic.')
param location string = resourceGroup().location

@description('Tags of the topic.')
param tags object = {}

@description('Principal (object) id of the tracker\'s managed identity.')
param principalId string

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  #checkov:skip=CKV_AZURE_193:The function app publishes over the topic's public endpoint (this template has no VNet integration or private endpoints); only Entra ID tokens with EventGrid Data Sender are accepted (disableLocalAuth).
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    publicNetworkAccess: 'Enabled'
    disableLocalAuth: true
  }
}

resource dataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, eventGridDataSenderRoleId)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
