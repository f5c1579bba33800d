"""nginx as a subprocess on a throwaway prefix, for the live tests; stopped by its PID."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path


class NginxMissing(RuntimeError):
    pass


class NginxProcess:
    """Serves one site configuration (``site``, an nginx ``server`` block text).

    The main configuration around it keeps every file in a temporary prefix:
    logs, temp paths, pid.  ``stop()`` sends SIGTERM to the PID we started.
    """

    def __init__(self, site: str, prefix: str = "nginx-test-",
                 worker_connections: int = 512) -> None:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(exe):
            raise NginxMissing("nginx is not installed: scripts/test installs the Debian "
                               "package nginx-light")
        self.dir = d = Path(tempfile.mkdtemp(prefix=prefix))
        d.chmod(0o755)  # worker processes may run as another user
        (d / "site.conf").write_text(site)
        (d / "nginx.conf").write_text(textwrap.dedent(f"""\
            worker_processes 1;
            error_log {d}/error.log info;
            events {{ worker_connections {worker_connections}; }}
            http {{
                access_log {d}/access.log;
                client_body_temp_path {d}/client_body;
                proxy_temp_path {d}/proxy;
                fastcgi_temp_path {d}/fastcgi;
                uwsgi_temp_path {d}/uwsgi;
                scgi_temp_path {d}/scgi;
                include {d}/site.conf;
            }}
            """))
        self.proc = subprocess.Popen(
            [exe, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log"),
             "-g", f"daemon off; pid {d}/nginx.pid;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
