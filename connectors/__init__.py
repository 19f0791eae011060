"""Chat-platform connectors: one module per platform, each verifies, parses and sends.

Connectors know nothing of intents; they turn a platform payload into `bot.models.Inbound`
and a `bot.models.Decision` back into the platform's reply call.
"""
