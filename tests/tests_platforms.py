"""Every connector type configured at once, with a signer per type: what the fuzz test, the
route walk and the bad-body tests send. Signed bodies pass the signature check, so the fuzz
reaches the parsers behind it; unsigned ones test what happens before it."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from connectors.crypto import chatwoot as chatwoot_sig
from connectors.crypto import dingtalk as dingtalk_sig
from connectors.crypto import feishu as feishu_crypto
from connectors.crypto import generic as generic_sig
from connectors.crypto import telegram as telegram_sig
from connectors.crypto.wecom import WeComCrypto

GENERIC_SECRET = "fuzz-generic-secret-0123456789"
TG_SECRET = "fuzz-telegram-secret"
DINGTALK_SECRET = "fuzz-dingtalk-app-secret"
CHATWOOT_SECRET = "fuzz-chatwoot-webhook-secret"
FEISHU_KEY, FEISHU_TOKEN = "fuzz-feishu-encrypt-key", "fuzz-feishu-verification-token"
WECOM_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
WECOM_AES = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
WECOM_CORP = "ww1436e0e65a779aee"
WECOM = WeComCrypto(WECOM_TOKEN, WECOM_AES, WECOM_CORP)


def connectors_config(api_base: str, folder) -> dict[str, dict[str, Any]]:
    """One connector of each type; every platform API points at ``api_base`` (a fake on loopback)."""
    return {
        "generic": {"type": "generic", "secret": GENERIC_SECRET},
        "telegram": {"type": "telegram", "bot_token": "123:fuzz", "secret_token": TG_SECRET, "api_base": api_base},
        "dingtalk": {"type": "dingtalk", "app_secret": DINGTALK_SECRET},
        "chatwoot": {"type": "chatwoot", "api_base": api_base, "api_access_token": "fuzz-token",
                     "webhook_secret": CHATWOOT_SECRET},
        "feishu": {"type": "feishu", "encrypt_key": FEISHU_KEY, "verification_token": FEISHU_TOKEN,
                   "app_id": "cli_fuzz", "app_secret": "fuzz", "api_base": api_base},
        "wecom": {"type": "wecom", "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES, "corp_id": WECOM_CORP,
                  "agent_id": 1000002, "secret": "fuzz", "api_base": api_base},
        "wecom_kf": {"type": "wecom_kf", "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES, "corp_id": WECOM_CORP,
                     "secret": "fuzz", "api_base": api_base, "cursor_path": str(folder / "kf-cursor.sqlite"),
                     "pull_seconds": 1.0},
    }


def signed(name: str, body: bytes) -> tuple[str, bytes, dict[str, str]]:
    """(path with query, body, headers) of ``body`` sent to connector ``name`` and signed as its platform does.

    For Feishu the body is the plaintext event (encrypted here); for WeCom the XML plaintext.
    """
    path = f"/webhook/{name}"
    if name == "generic":
        return path, body, {"X-Kefu-Signature": generic_sig.sign(GENERIC_SECRET, body)}
    if name == "telegram":
        return path, body, {telegram_sig.HEADER: TG_SECRET}
    if name == "dingtalk":
        ts = str(int(time.time() * 1000))
        return path, body, {dingtalk_sig.TIMESTAMP_HEADER: ts, dingtalk_sig.SIGN_HEADER: dingtalk_sig.sign(DINGTALK_SECRET, ts)}
    if name == "chatwoot":
        ts = str(int(time.time()))
        return path, body, {chatwoot_sig.TIMESTAMP_HEADER: ts,
                            chatwoot_sig.SIGNATURE_HEADER: chatwoot_sig.sign(CHATWOOT_SECRET, ts, body)}
    if name == "feishu":
        plain = body.decode("utf-8", "replace")
        outer = json.dumps({"encrypt": feishu_crypto.encrypt(FEISHU_KEY, plain)}).encode()
        ts, nonce = str(int(time.time())), secrets.token_hex(8)
        return path, outer, {feishu_crypto.TIMESTAMP_HEADER: ts, feishu_crypto.NONCE_HEADER: nonce,
                             feishu_crypto.SIGNATURE_HEADER: feishu_crypto.signature(ts, nonce, FEISHU_KEY, outer)}
    if name in {"wecom", "wecom_kf"}:
        ts, nonce = str(int(time.time())), "1597212914"
        parts = WECOM.encrypt(body.decode("utf-8", "replace"), nonce, ts)
        envelope = (f"<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{parts['Encrypt']}]]></Encrypt></xml>").encode()
        query = f"?msg_signature={parts['MsgSignature']}&timestamp={ts}&nonce={nonce}"
        return path + query, envelope, {"Content-Type": "text/xml"}
    raise KeyError(name)
