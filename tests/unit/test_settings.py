"""Settings: defaults, validation messages, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import ConfigError, Settings, load_settings


def test_embedded_defaults() -> None:
    """Without a file the gateway runs on the documented defaults."""
    s = load_settings(None)
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    b = s.bayeux
    assert (b.path, b.timeout_ms, b.interval_ms, b.max_interval_ms) == ("/api/v2/notifications", 30000, 0, 10000)
    assert b.max_body_bytes == 1024 * 1024 and b.require_browser_cookie is False
    assert b.ack_extension and b.timesync_extension


def test_overrides_win_over_file(tmp_path: Path) -> None:
    """--host/--port (passed as server.host/server.port) override the file."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: 9000\n  host: 0.0.0.0\n")
    s = load_settings(cfg, **{"server.port": 9100, "server.host": None})
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9100)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bayeux:\n  client_publish: ['/a/*/b']\n", "bayeux.client_publish"),
        ("bayeux:\n  path: api\n", "bayeux.path"),
        ("bayeux:\n  queue_overflow: explode\n", "bayeux.queue_overflow"),
        ("- a list\n", "top level must be a mapping"),
        ("bayeux: [1, 2\n", "not valid YAML"),
        ("server:\n  prot: 1\n", "server.prot"),
    ],
)
def test_errors_name_the_place(tmp_path: Path, text: str, fragment: str) -> None:
    """Every config error says which key and what is wrong."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert fragment in str(err.value)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after loading (one source of truth)."""
    s = Settings()
    with pytest.raises(ValueError):
        s.server.port = 1  # type: ignore[misc]


def test_wait_for_engines_is_a_duration(tmp_path: Path) -> None:
    """cluster.wait_for_engines_s: 0 by default (exit at once), seconds to wait from the file or --wait-for-engines
    (cluster.wait_for_engines_s), and a negative or infinite value is refused naming the key."""
    assert Settings().cluster.wait_for_engines_s == 0
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster:\n  wait_for_engines_s: 30\n")
    assert load_settings(cfg).cluster.wait_for_engines_s == 30
    assert load_settings(cfg, **{"cluster.wait_for_engines_s": 2.5}).cluster.wait_for_engines_s == 2.5
    for bad, says in (("-1", "greater than or equal to 0"), (".inf", "finite number")):
        cfg.write_text(f"cluster:\n  wait_for_engines_s: {bad}\n")
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert "cluster.wait_for_engines_s: Input should be" in str(err.value) and says in str(err.value)
