"""The domain: what a tracked job is, what an observation of Azure means for it, and what its result looks like.

Pure Python: no I/O, no Azure SDK, and no vault kind. What differs between vault kinds (Recovery Services, Backup
vaults) comes from ``jobs.providers`` as plain values (``JobState``, ``OperationState``, event fields).
"""
