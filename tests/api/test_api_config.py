"""The [api] configuration: safe defaults, environment overrides, the sample file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sendguard.config import ApiConfig, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_defaults_are_safe() -> None:
    cfg = load_config(None, environ={})
    assert cfg.api.listen == "127.0.0.1:8025"  # loopback only
    assert cfg.api.max_body == 256 * 1024
    assert cfg.api.watch is False
    assert cfg.api.relay is False
    assert cfg.api.callback_networks == []  # no callbacks until networks are listed


def test_relative_paths_are_relative_to_the_file_and_env_overrides(tmp_path: Path) -> None:
    f = tmp_path / "etc" / "sendguard.toml"
    f.parent.mkdir()
    f.write_text('[api]\ntokens_file = "tokens.toml"\nwatch = true\n')
    cfg = load_config(f, environ={"SENDGUARD_API__LISTEN": "[::1]:9000"})
    assert cfg.api.tokens_file == tmp_path / "etc" / "tokens.toml"
    assert cfg.api.watch is True
    assert cfg.api.listen == "[::1]:9000"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('listen = "8025"', "api.listen"),
        ("max_body = 10", "api.max_body"),
        ("watch_interval = 0", "api.watch_interval"),
        ("port = 8025", "api.port"),
        ('callback_networks = ["10.1.2.3/8"]', "api.callback_networks"),
        ('callback_networks = ["intranet"]', "api.callback_networks"),
        ('callback_networks = "10.0.0.0/8"', "api.callback_networks"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "sendguard.toml"
    f.write_text(f"[api]\n{text}\n")
    with pytest.raises(ConfigError, match=re.escape(field)):
        load_config(f, environ={})


def test_callback_networks_are_networks(tmp_path: Path) -> None:
    f = tmp_path / "sendguard.toml"
    f.write_text('[api]\ncallback_networks = ["10.20.0.0/16", "192.0.2.7/32", "fd00::/8"]\n')
    assert [str(n) for n in load_config(f, environ={}).api.callback_networks] == [
        "10.20.0.0/16",
        "192.0.2.7/32",
        "fd00::/8",
    ]
    f.write_text('[api]\ncallback_networks = ["10.20.1.5/16"]\n')
    with pytest.raises(
        ConfigError, match=r"write 10\.20\.0\.0/16 for the network or 10\.20\.1\.5/32"
    ):
        load_config(f, environ={})


def test_the_sample_config_documents_every_api_option() -> None:
    sample = ROOT / "deploy" / "sendguard.toml"
    cfg = load_config(sample, environ={})
    assert cfg.api.tokens_file == Path("/etc/sendguard/api-tokens.toml")
    body = sample.read_text(encoding="utf-8").split("\n[api]\n", 1)[1].split("\n[", 1)[0]
    documented = set(re.findall(r"^#? ?([a-z0-9_]+) = ", body, re.MULTILINE))
    assert set(ApiConfig.model_fields) <= documented, set(ApiConfig.model_fields) - documented


def test_the_deploy_files_run_sendguard_serve() -> None:
    unit = (ROOT / "deploy" / "systemd" / "sendguard-api.service").read_text()
    assert "ExecStart=/opt/sendguard/venv/bin/sendguard serve --config" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "User=sendguard" in unit
    container = (ROOT / "deploy" / "Containerfile").read_text()
    assert container.startswith("#")
    assert "FROM python:3.11-slim" in container
    assert "USER sendguard" in container
    assert 'CMD ["serve", "--config", "/etc/sendguard/sendguard.toml"]' in container
    assert container.index("USER sendguard") < container.index("ENTRYPOINT")


@pytest.mark.parametrize("where", ["before", "after"])
def test_directory_stats_reads_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    from api_support import DEMO

    from sendguard.cli import main

    cfg = tmp_path / "sendguard.toml"
    cfg.write_text(f'[directory]\nsources = ["{DEMO}"]\nsnapshot = "var/directory.sgd"\n')
    args = ["directory", "stats"]
    argv = ["-c", str(cfg), *args] if where == "before" else [*args, "-c", str(cfg)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "entries:   14 " in out
    assert (tmp_path / "var" / "directory.sgd").exists()  # through the snapshot, as serve loads it
    assert main(argv) == 0  # and again, from the snapshot
    assert "entries:   14 " in capsys.readouterr().out
