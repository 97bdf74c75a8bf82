"""The notifier: one process, one service, routes optional.

``service`` is the Kafka shell (``NotifierService``) that commits an alert's offset only once its
notifications are delivered or parked; ``cli`` holds ``listenwell notifier``, ``silence`` and
``routes``. ``config`` loads ``routes.yaml``; ``core`` is the pure dispatcher (routing, grouping,
timers, silences, digests) driven by the time it is given; ``console`` is the console receiver
(every transition, one line each) and ``receivers`` the others (Slack, SMTP, Alertmanager,
webhooks); ``delivery`` adds retries, rate limits and the notification log; ``render`` formats
messages; ``silences`` keeps silences on their topic; ``metrics`` declares the process's metrics;
``demo`` holds the local Slack and SMTP stand-ins of ``make demo``.
"""
