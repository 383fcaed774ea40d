// Alert rules on the tracker's own metrics (jobs/telemetry/otel.py, docs/operating.md "Telemetry"): the app
// exports them through the Azure Monitor OpenTelemetry distro to Application Insights, where they land as custom
// metrics (customMetrics, with their attributes in customDimensions). Log search alerts read them there, so no
// custom-metric-dimensions preview has to be turned on. Each fires once a window has a count above zero.
@description('Name of the Application Insights component the app exports to.')
param applicationInsightsName string

@description('Prefix of the rule names.')
param namePrefix string

@description('Region.')
param location string = resourceGroup().location

@description('Tags.')
param tags object = {}

@description('Resource id of an action group to notify (mail, webhook, ...); empty: the rules fire in the portal only.')
param actionGroupId string = ''

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var rules = [
  {
    name: 'failed-results'
    title: 'Backup jobs failed'
    text: 'Result events of failed jobs or operations (backupjobs.results, type *.Failed or *.OperationFailed).'
    severity: 2
    query: 'customMetrics | where name == "backupjobs.results" | extend type = tostring(customDimensions["type"]) | where type endswith ".Failed" or type endswith ".OperationFailed" | summarize Value = sum(valueSum)'
  }
  {
    name: 'tracking-failed'
    title: 'Backup Job Tracker could not track jobs'
    text: 'TrackingFailed results: the tracker itself could not record or publish a job (backupjobs.results, type *.TrackingFailed).'
    severity: 1
    query: 'customMetrics | where name == "backupjobs.results" | extend type = tostring(customDimensions["type"]) | where type endswith ".TrackingFailed" | summarize Value = sum(valueSum)'
  }
  {
    name: 'dead-lettered-deliveries'
    title: 'Webhook deliveries dead-lettered'
    text: 'Events that went to the dead-letter queue after their retries (backupjobs.deliveries, outcome dead-lettered).'
    severity: 2
    query: 'customMetrics | where name == "backupjobs.deliveries" | where tostring(customDimensions["outcome"]) == "dead-lettered" | summarize Value = sum(valueSum)'
  }
  {
    name: 'failing-credentials'
    title: 'Azure refuses the tracker\'s credential'
    text: 'Reads refused with 401: the identity of the app is not accepted; no job ends over this (backupjobs.arm.refused, kind credential).'
    severity: 1
    query: 'customMetrics | where name == "backupjobs.arm.refused" | where tostring(customDimensions["kind"]) == "credential" | summarize Value = sum(valueSum)'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.title
    description: rule.text
    severity: rule.severity
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Total'
          metricMeasureColumn: 'Value'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: empty(actionGroupId) ? [] : [
        actionGroupId
      ]
    }
  }
}]
