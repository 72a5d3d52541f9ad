"""Alerts (issue 18 item 4): cap thresholds, open circuits and error rates, delivered by webhook,
Slack-compatible webhook and email, once per threshold per period, retried with backoff.

    watch.AlertWatcher      evaluates the rules every SWITCHBOARD_ALERT_INTERVAL seconds and
                            inserts one delivery row per channel (the unique key dedupes)
    deliveries.Deliveries   claims due rows, sends them (senders), records the outcome, retries
    messages                what each alert says, the webhook/Slack/email formats, the signature
    service.Alerts          owns both background tasks and the HTTP client (the app's lifespan)

Nothing here runs on the request path: a breaker opening only appends to a list.
"""
