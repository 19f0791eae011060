"""The HTTP side of kefu in one place: the webhook server and, beside it, the agent API and pages."""
