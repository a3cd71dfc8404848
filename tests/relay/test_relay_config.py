"""The [relay] and [store] configuration sections: defaults, overrides, errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from sendguard.config import ConfigError, load_config, parse_host_port


def test_safe_defaults() -> None:
    cfg = load_config(None, environ={})
    r = cfg.relay
    assert r.listen == "127.0.0.1:10025"
    assert r.next_hop == "127.0.0.1:10026"
    assert r.client_networks == [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    assert r.mixed_policy == "hold-all"
    assert r.auth_users is None
    assert r.tls_cert is None
    assert cfg.store.url == "sqlite:///var/sendguard.db"


def test_paths_and_store_url_are_relative_to_the_config_file(tmp_path: Path) -> None:
    f = tmp_path / "etc" / "sendguard.toml"
    f.parent.mkdir()
    f.write_text(
        '[relay]\ntls_cert = "tls/cert.pem"\ntls_key = "/abs/key.pem"\n'
        '[store]\nurl = "sqlite:///var/q.db"\n',
        encoding="utf-8",
    )
    cfg = load_config(f, environ={})
    assert cfg.relay.tls_cert == f.parent.resolve() / "tls" / "cert.pem"
    assert cfg.relay.tls_key == Path("/abs/key.pem")
    assert cfg.store.url == f"sqlite:///{f.parent.resolve() / 'var' / 'q.db'}"


def test_environment_overrides(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        environ={
            "SENDGUARD_RELAY__LISTEN": "[::1]:2525",
            "SENDGUARD_RELAY__CLIENT_NETWORKS": '["10.0.0.0/8"]',
            "SENDGUARD_RELAY__CHECK_WORKERS": "0",
            "SENDGUARD_RELAY__MIXED_POLICY": "split",
            "SENDGUARD_STORE__URL": "sqlite:////srv/q.db",
        },
    )
    assert parse_host_port(cfg.relay.listen) == ("::1", 2525)
    assert cfg.relay.client_networks == [ipaddress.ip_network("10.0.0.0/8")]
    assert cfg.relay.check_workers == 0
    assert cfg.relay.mixed_policy == "split"
    assert cfg.store.url == "sqlite:////srv/q.db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SENDGUARD_RELAY__LISTEN": "10025"}, "relay.listen"),
        ({"SENDGUARD_RELAY__LISTEN": "::1:25"}, "brackets"),
        ({"SENDGUARD_RELAY__NEXT_HOP": "host:99999"}, "relay.next_hop"),
        ({"SENDGUARD_RELAY__CLIENT_NETWORKS": '["everyone"]'}, "client_networks"),
        ({"SENDGUARD_RELAY__MIXED_POLICY": "some"}, "mixed_policy"),
        ({"SENDGUARD_RELAY__TLS_CERT": "c.pem"}, "tls_cert and tls_key go together"),
        ({"SENDGUARD_RELAY__AUTH_USERS": "users"}, "AUTH is only offered over TLS"),
        ({"SENDGUARD_RELAY__REQUIRE_STARTTLS": "true"}, "require_starttls needs"),
        (
            {"SENDGUARD_RELAY__NEXT_HOP_USERNAME": "u", "SENDGUARD_RELAY__NEXT_HOP_PASSWORD": "p"},
            "next_hop_tls",
        ),
        ({"SENDGUARD_RELAY__MAX_LINE_LENGTH": "80"}, "max_line_length"),
        ({"SENDGUARD_RELAY__NO_SUCH_OPTION": "1"}, "no_such_option"),
        ({"SENDGUARD_STORE__URL": "mysql://x"}, "unknown store"),
        ({"SENDGUARD_STORE__URL": "sqlite://relative.db"}, "SQLite URL"),
        ({"SENDGUARD_STORE__URL": "var/q.db"}, "expected a URL"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, environ=env)


def test_postgresql_url_is_accepted_for_later() -> None:
    cfg = load_config(None, environ={"SENDGUARD_STORE__URL": "postgresql://db/sendguard"})
    assert cfg.store.url == "postgresql://db/sendguard"


def test_the_sample_config_loads_and_documents_every_option() -> None:
    import re

    from sendguard.config import (
        DirectoryConfig,
        RelayConfig,
        RulesConfig,
        StoreConfig,
    )

    sample = Path(__file__).resolve().parents[2] / "deploy" / "sendguard.toml"
    load_config(sample, environ={})
    text = sample.read_text(encoding="utf-8")
    sections = {
        "directory": DirectoryConfig,
        "rules": RulesConfig,
        "relay": RelayConfig,
        "store": StoreConfig,
    }
    for name, model in sections.items():
        body = text.split(f"[{name}]", 1)[1].split("\n[", 1)[0]
        documented = set(re.findall(r"^#? ?([a-z0-9_]+) = ", body, re.MULTILINE))
        assert set(model.model_fields) <= documented, (name, set(model.model_fields) - documented)
