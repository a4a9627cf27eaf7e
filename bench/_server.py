"""Start the web server the way `make run` does (gunicorn from the Procfile settings) for benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(env: dict[str, str], *, workers: int = 4, threads: int = 4) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "annotator.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("web server did not start")


def bench_env(data_dir: str) -> dict[str, str]:
    env = {**os.environ, "ANNOTATOR_DATA_DIR": data_dir, "ANNOTATOR_HTTPS": "0", "DEBUG": "0"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    return env
