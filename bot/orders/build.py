"""The configured order source (`orders:` in config.yaml), built when the server starts."""

from __future__ import annotations

from bot.config import Config, ConfigError, expand_env
from bot.orders.base import OrderSource
from bot.orders.store_source import StoreOrderSource
from bot.store import Store


def order_source(config: Config, store: Store) -> OrderSource:
    """Raises ConfigError naming the key when the section cannot work."""
    settings = config.orders
    if settings.source == "store":
        return StoreOrderSource(store)
    secret = str(expand_env(settings.secret, "orders.secret"))
    session = str(expand_env(settings.session, "orders.session"))
    if settings.source == "http":
        from bot.orders.http_source import HttpOrderSource

        try:
            return HttpOrderSource(settings.url, secret, settings.timeout_seconds)
        except ValueError as exc:
            raise ConfigError(f"orders: {exc}") from None
    from bot.orders.taobao_source import TaobaoOrderSource

    raw = config.connectors.get(settings.connector)
    if not isinstance(raw, dict) or raw.get("type") != "taobao_tmc":
        raise ConfigError(f"orders.connector: {settings.connector!r} is not a taobao_tmc connector in connectors:")
    if not session:
        raise ConfigError("orders.session: the Taobao source needs the shop's session key (${VAR})")
    tmc = expand_env(raw, f"connectors.{settings.connector}")
    return TaobaoOrderSource(
        store, api_base=tmc["api_base"], app_key=str(tmc["app_key"]), app_secret=str(tmc["app_secret"]),
        session=session, sign_method=tmc.get("sign_method", "hmac-sha256"), timeout=settings.timeout_seconds,
    )
