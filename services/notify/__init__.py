"""The reliable notifier: route tree, grouping and timers, silences, receivers and delivery.

``config`` loads ``routes.yaml``; ``core`` is the pure dispatcher (routing, grouping, timers,
silences, digests) driven by an injected clock; ``receivers`` talk to Slack, SMTP, Alertmanager and
webhooks; ``delivery`` adds retries, rate limits and the notification log; ``service`` is the thin
Kafka shell that commits an alert's offset only once its notifications are delivered or parked.
"""
