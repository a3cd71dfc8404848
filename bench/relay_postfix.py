"""A private Postfix instance, built from deploy/postfix/ (test and bench use).

Everything lives in one folder (configuration, queue, log); nothing under
/etc is touched. The instance listens on 127.0.0.1:<smtpd>, relays to a
sink on 127.0.0.1:<relayhost>, and, with `content_filter`, runs mail
through the sendguard relay exactly as deploy/postfix/*.snippet say, with
only the ports changed:

    client -> Postfix :smtpd -> scan -> relay :filter -> Postfix :reinject -> sink :relayhost

Needs the Debian `postfix` package and root (Postfix's master runs as root).
Postfix writes errors to stderr only when stderr is a terminal, so every
failure here quotes the instance's own maillog.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEPLOY", "Ports", "PostfixInstance", "postfix_missing"]

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "postfix"
BINARIES = ("postfix", "postconf", "postqueue", "smtp-sink", "smtp-source")

# The standard service list, chroot off (the instance has no chroot tree),
# and no `smtp inet` on port 25: the instance listens on its own port only.
_MASTER_BASE = """\
{smtpd_listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_MAIN_BASE = """\
compatibility_level = 3.6
config_directory = {dir}/etc
queue_directory = {dir}/spool
data_directory = {dir}/lib
maillog_file = {dir}/maillog
maillog_file_prefixes = /var, /dev/stdout, {dir}
myhostname = mx.sendguard.test
mydomain = sendguard.test
myorigin = $myhostname
mydestination =
local_transport = error:local delivery is off in this instance
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{relayhost}
smtpd_peername_lookup = no
# quick retries: a test instance, not a production setting
queue_run_delay = {retry}s
minimal_backoff_time = {retry}s
maximal_backoff_time = {max_backoff}s
"""


def postfix_missing() -> str | None:
    """Why a private Postfix cannot run here, or None if it can."""
    missing = [b for b in BINARIES if shutil.which(b, path="/usr/sbin:/usr/bin") is None]
    if missing:
        return f"Postfix binaries not installed: {', '.join(missing)} (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its master process runs as root)"
    return None


@dataclass(frozen=True)
class Ports:
    smtpd: int
    relayhost: int
    filter: int = 10025
    reinject: int = 10026


class PostfixInstance:
    """One private Postfix in `folder`; `content_filter` sends mail through sendguard."""

    def __init__(
        self, folder: Path, ports: Ports, *, content_filter: bool = True, retry: int = 10
    ) -> None:
        self.dir = folder.resolve()
        self.ports = ports
        self.content_filter = content_filter
        self.retry = retry
        self.etc = self.dir / "etc"
        self.maillog = self.dir / "maillog"

    # -- configuration -----------------------------------------------------
    def configure(self) -> None:
        """Write main.cf and master.cf from the base plus deploy/postfix/."""
        for sub in ("etc", "spool", "lib"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "lib", user="postfix")
        main = _MAIN_BASE.format(
            dir=self.dir,
            relayhost=self.ports.relayhost,
            retry=self.retry,
            max_backoff=self.retry * 3,
        )
        master = _MASTER_BASE.format(smtpd_listen=f"127.0.0.1:{self.ports.smtpd}")
        if self.content_filter:
            main += "\n" + self.snippet("main.cf.snippet")
            master += "\n" + self.snippet("master.cf.snippet")
        (self.etc / "main.cf").write_text(main, encoding="utf-8")
        (self.etc / "master.cf").write_text(master, encoding="utf-8")

    def snippet(self, name: str) -> str:
        """A deploy/postfix snippet with this instance's ports."""
        text = (DEPLOY / name).read_text(encoding="utf-8")
        text = text.replace("[127.0.0.1]:10025", f"[127.0.0.1]:{self.ports.filter}")
        return text.replace("127.0.0.1:10026", f"127.0.0.1:{self.ports.reinject}")

    # -- control -----------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["/usr/sbin/" + args[0], "-c", str(self.etc), *args[1:]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}\n"
                f"maillog:\n{self.log()[-3000:]}"
            )
        return proc

    def start(self) -> None:
        self.configure()
        self._run("postfix", "check")
        self._run("postfix", "start")
        self._wait_listening(self.ports.smtpd)
        if self.content_filter:
            self._wait_listening(self.ports.reinject)

    def stop(self) -> None:
        if self._run("postfix", "status", check=False).returncode != 0:
            return
        self._run("postfix", "stop", check=False)
        deadline = time.monotonic() + 30
        while self._run("postfix", "status", check=False).returncode == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("Postfix did not stop within 30 s")
            time.sleep(0.1)

    def _wait_listening(self, port: int, timeout: float = 30) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Postfix is not listening on {port}; maillog:\n{self.log()[-3000:]}"
                    ) from None
                time.sleep(0.05)

    # -- inspection --------------------------------------------------------
    def queue(self) -> list[dict[str, object]]:
        """The queue, one dict per message (postqueue -j)."""
        out = self._run("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """Retry deferred mail now."""
        self._run("postqueue", "-f")

    def log(self) -> str:
        try:
            return self.maillog.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_log(self, text: str, *, timeout: float = 60, count: int = 1) -> str:
        """Wait until the maillog has `text` `count` times; the log."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if log.count(text) >= count:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the Postfix log:\n{log[-4000:]}")
            time.sleep(0.1)
