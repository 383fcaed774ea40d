"""Outbound HTTP to subscribers: the SSRF guard for per-job ``callbackUrl``s (``callback_urls``) and one signed
webhook request with its answer classified (``sender``). When to retry is the delivery flow's business."""
