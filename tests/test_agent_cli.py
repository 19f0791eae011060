"""`kefu agent token`: a working token as the last line, only a hash in the store."""

from __future__ import annotations

from click.testing import CliRunner

from bot.cli import main
from bot.store import SqliteStore
from bot.web.agent.tokens import TokenVerifier
from tests_support import write_config


def test_agent_token_prints_a_token_and_stores_only_its_hash(tmp_path):
    config = write_config(tmp_path, store={"path": str(tmp_path / "kefu.sqlite")})
    result = CliRunner().invoke(main, ["agent", "token", "xiaomei", "--config", str(config)])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("kefu_")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("kefu.sqlite*"))
    secret = token[len("kefu_") + 16 + 1 :]
    assert token.encode() not in raw and secret.encode() not in raw
    store = SqliteStore(tmp_path / "kefu.sqlite")
    try:
        assert TokenVerifier(store).agent_for(token) == "xiaomei"
        again = CliRunner().invoke(main, ["agent", "token", "xiaomei", "--config", str(config)])
        newer = again.output.strip().splitlines()[-1]
        verifier = TokenVerifier(store)
        assert verifier.agent_for(newer) == "xiaomei"
        assert verifier.agent_for(token) is None  # the previous token is revoked
        assert verifier.agent_for(newer[:-1] + ("A" if newer[-1] != "A" else "B")) is None
    finally:
        store.close()


def test_agent_token_refuses_an_unknown_agent(tmp_path):
    config = write_config(tmp_path, store={"path": str(tmp_path / "kefu.sqlite")})
    result = CliRunner().invoke(main, ["agent", "token", "nobody", "--config", str(config)])
    assert result.exit_code == 1
    assert "unknown agent 'nobody'" in result.output and "xiaomei" in result.output
