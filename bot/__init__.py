"""kefu engine: config, models, policy, engine and the `kefu` CLI."""
