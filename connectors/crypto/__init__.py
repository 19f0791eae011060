"""Pure protocol crypto for the chat-platform connectors: no network, no web framework.

One module per platform (`wecom`, `feishu`, `dingtalk`, `chatwoot`, `telegram`, `slack`,
`generic`); each raises only the `ProtocolError` family below, with a message naming the
failing check. Secrets are always compared with `hmac.compare_digest`.
"""

from .errors import (
    DecryptError,
    MalformedPayload,
    ProtocolError,
    ReceiverMismatch,
    SignatureError,
    StaleTimestamp,
)

__all__ = [
    "DecryptError",
    "MalformedPayload",
    "ProtocolError",
    "ReceiverMismatch",
    "SignatureError",
    "StaleTimestamp",
]
