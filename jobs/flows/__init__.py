"""The flows: what happens to a job between the triggers and Azure, in the order it happens.

``intake`` (a message becomes tracked jobs, or a rejection) → ``poll_round`` (the timer picks due jobs, vault by
vault) → ``poll_worker`` (one vault's jobs read through their provider) → ``publisher`` (a result to the results
queue and to delivery tasks, once per subscriber) → ``delivery`` (one webhook attempt, retry or dead-letter).
"""
