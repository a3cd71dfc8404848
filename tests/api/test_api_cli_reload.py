"""`sendguard directory reload`: the CLI asks a running server to reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import LiveServer, TcpListener, write_config

from sendguard.api.tokens import Role, add_token
from sendguard.cli import main
from sendguard.config import load_config


def test_reload_through_the_cli(
    tmp_path: Path,
    next_hop: TcpListener,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "directory.csv"
    directory.write_text("id,kind,given,family,email\nP1,patient,Jane,Smith,jane@x.org\n")
    path = write_config(tmp_path, next_hop.port, sources=[str(directory)])
    cfg = load_config(path, environ={})
    admin = add_token(cfg.api.tokens_file, "ops", Role.ADMIN)
    check = add_token(cfg.api.tokens_file, "practice")
    with LiveServer(cfg) as server:
        args = ["directory", "reload", "-c", str(path), "--url", server.url]

        monkeypatch.delenv("SENDGUARD_ADMIN_TOKEN", raising=False)
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 64  # no token

        monkeypatch.setenv("SENDGUARD_ADMIN_TOKEN", check)
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 77  # not an admin token

        monkeypatch.setenv("SENDGUARD_ADMIN_TOKEN", admin)
        directory.write_text(
            "id,kind,given,family,email\n"
            "P1,patient,Jane,Smith,jane@x.org\nP2,patient,Bob,Jones,bob@y.org\n"
        )
        capsys.readouterr()
        assert main(args) == 0
        assert "reloaded: 2 directory entries" in capsys.readouterr().out

        directory.write_text("id,kind,nonsense\nP3,patient,x\n")
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 65  # refused; the server keeps the two entries
        assert "nonsense" in capsys.readouterr().err
        assert server.server.service is not None
        assert len(server.server.service.guard.directory) == 2

    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 69  # nobody answers
