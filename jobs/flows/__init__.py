"""The flows: what happens to a job between the tracker's front door and Azure, in the order it happens.

``intake`` (a message becomes tracked items, or a rejection) → ``poll_round`` (the timer picks due items, vault by
vault, as the ``policy`` says) → ``poll_worker`` (one vault's items read through their provider) → ``publisher``
(a result to every output, once per subscriber) → ``delivery`` (one webhook attempt, retry or dead-letter).
``subscriptions`` holds the rules of who follows what (capabilities, unsubscribing, an operation's subscribers
handed on to its jobs); every flow reports what happened to the tracker's observer (``jobs.telemetry``).
"""
