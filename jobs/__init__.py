"""Backup Job Tracker: tracks Azure Backup jobs and publishes each result."""
