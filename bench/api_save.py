"""Latency of saving an image's annotations (100 polygons x 50 vertices) with 32 concurrent clients.

Starts gunicorn as `make run` does, on loopback, against the configured database (SQLite in a
temporary data dir by default; set DATABASE_URL for PostgreSQL). Each client is an annotator
saving their own image of 100 polygons; each save moves one vertex of one polygon, as an
autosave after a drag does (`--rewrite` changes every polygon on every save instead). A save is
what the editor's autosave sends: a PATCH of the changed objects with the order of the whole set;
`--put` sends the whole set (PUT) instead, as the editor did before, for comparison. Loads:
  - closed loop: every client saves again as soon as the previous save returned (max throughput);
  - autosave pace: every client saves once per second (what the editor's autosave does), each
    from its own moment in the first second (`--lockstep`: all at the same moment, a burst of 32
    saves every second, which no team of annotators produces).
Then autosave pace again in halves alternating with a floor: the same clients at the same pace
asking for the image's metadata (GET /api/images/<id>/), printed side by side with the ratio.
Each load also prints the CPU time one save cost the web processes and the PostgreSQL backends
serving them (from /proc, Linux), which other work on the machine does not inflate the way it
inflates latencies; the load average is printed with them.
Usage: .venv/bin/python bench/api_save.py [--clients 32] [--seconds 15] [--workers 2]
"""
from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import bench_env, start_web  # noqa: E402


def polygon(cx: float, cy: float, radius: float, vertices: int = 50) -> list[list[float]]:
    return [[round(cx + radius * math.cos(2 * math.pi * k / vertices), 2),
             round(cy + radius * math.sin(2 * math.pi * k / vertices), 2)] for k in range(vertices)]


def setup(clients: int) -> tuple[list[tuple[str, int]], int]:
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotator.images.services import images_add
    from annotator.projects.models import Membership
    from annotator.projects.services import project_create, user_create
    from tests.factories import png_bytes

    call_command("migrate", verbosity=0)
    project = project_create(name=f"bench-{os.getpid()}", creator=None, labels=[{"name": "object"}])
    sources = [(f"{i}.png", lambda i=i: png_bytes(1000, 1000, color=(i, 0, 0))) for i in range(clients)]
    images = images_add(project=project, sources=sources).created
    tokens = []
    for index, image in enumerate(images):
        user = user_create(username=f"bench{os.getpid()}-{index}", password="bench-pass-123")
        Membership.objects.create(project=project, user=user, role="annotator")
        tokens.append((Token.objects.create(user=user).key, image.pk))
    return tokens, project.labels.get().pk


class Window:
    """The measured time of one load: it opens once every client has loaded its image (a load is
    not a save, and 32 loads at once are no autosave), and closes `seconds` later."""

    def __init__(self, clients: int, seconds: float) -> None:
        self.seconds = seconds
        self.stop = math.inf
        self.opened = threading.Barrier(clients + 1, action=self._open, timeout=120)

    def _open(self) -> None:
        self.stop = time.monotonic() + self.seconds


def client_loop(
    url: str, token: str, image_id: int, label: int, window: Window, pace: float | None, rewrite: bool,
    out: list[float], errors: list[str], floor: bool = False, resets: list[str] | None = None,
) -> None:
    """One client: saves (or floor requests) until the window closes; a connection the overloaded server resets ends it, counted."""
    try:
        _client_loop(url, token, image_id, label, window, pace, rewrite, out, errors, floor, WHOLE_SET)
    except requests.ConnectionError as exc:
        if resets is not None:
            resets.append(str(exc))


def _client_loop(
    url: str, token: str, image_id: int, label: int, window: Window, pace: float | None, rewrite: bool,
    out: list[float], errors: list[str], floor: bool = False, whole_set: bool = False,
) -> None:
    session = requests.Session()
    # As the editor's autosave does: only the new version is needed back.
    session.headers.update({"Authorization": f"Token {token}", "Content-Type": "application/json", "Prefer": "return=minimal"})
    annotations = [
        {"label": label, "geometry": {"type": "polygons", "polygons": [{"exterior": polygon(50 + (k % 10) * 95, 50 + (k // 10) * 95, 40), "holes": []}]}}
        for k in range(100)
    ]
    current = session.get(f"{url}/api/images/{image_id}/annotations/").json()
    version = current["version"]
    if current["annotations"]:
        annotations = [{k: a[k] for k in ("uid", "label", "geometry", "z_order", "source", "score", "attributes")} for a in current["annotations"]]
    window.opened.wait()
    stop = window.stop
    if pace and not LOCKSTEP:
        # People do not save in the same millisecond: each client starts at its own moment in
        # the first period and keeps its pace from there.
        time.sleep(random.Random(image_id).uniform(0, pace))
    step = 0
    while time.monotonic() < stop:
        step += 1
        if floor:
            # The floor: the same client, pace and server, asking for the image's metadata (log-in,
            # access check, one row) instead of saving.
            started = time.monotonic()
            response = session.get(f"{url}/api/images/{image_id}/")
            elapsed = time.monotonic() - started
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
                return
            out.append(elapsed * 1000)
            if pace:
                time.sleep(max(0.0, pace - elapsed))
            continue
        edited = list(range(100)) if rewrite else [step % 100]
        for k in edited:
            vertex = annotations[k]["geometry"]["polygons"][0]["exterior"][step % 50]
            vertex[0] = round(vertex[0] + (0.5 if step % 2 else -0.5), 2)
        # The first save of an image has no uids to name yet: it sends the whole set.
        if whole_set or "uid" not in annotations[0]:
            method, body = "PUT", orjson.dumps({"version": version, "annotations": annotations})
        else:
            method, body = "PATCH", orjson.dumps({
                "version": version, "changed": [annotations[k] for k in edited], "order": [a["uid"] for a in annotations],
            })
        started = time.monotonic()
        response = session.request(method, f"{url}/api/images/{image_id}/annotations/", data=body)
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            errors.append(f"{response.status_code} {response.text[:200]}")
            return
        version = response.json()["version"]
        out.append(elapsed * 1000)
        if pace:
            time.sleep(max(0.0, pace - elapsed))


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each of these processes still running."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU time spent between two readings (a process started in between counts from its start)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _server_pids(server_pid: int) -> tuple[list[int], list[int]]:
    """The gunicorn processes (master and workers), and the PostgreSQL backends on this database but ours."""
    web = [server_pid]
    try:
        web += [int(pid) for pid in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()]
    except OSError:
        pass
    database: list[int] = []
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            database = [row[0] for row in cursor.fetchall()]
    return web, database


SERVER_PID = 0
WHOLE_SET = False
LOCKSTEP = False


def run(url: str, tokens: list[tuple[str, int]], label: int, seconds: float, pace: float | None, rewrite: bool,
        floor: bool = False) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    resets: list[str] = []
    window = Window(len(tokens), seconds)
    threads = [
        threading.Thread(target=client_loop, args=(url, t, i, label, window, pace, rewrite, latencies, errors, floor, resets))
        for t, i in tokens
    ]
    for thread in threads:
        thread.start()
    window.opened.wait()
    started = time.monotonic()
    web, database = _server_pids(SERVER_PID)
    web_before, database_before = _cpu_seconds(web), _cpu_seconds(database)
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    if errors:
        raise SystemExit(f"{len(errors)} failed saves, first: {errors[0]}")
    # Backends opened during the run (a connection per gunicorn thread) count from their start.
    web, database = _server_pids(SERVER_PID)
    web_cpu = _cpu_spent(web_before, _cpu_seconds(web))
    database_cpu = _cpu_spent(database_before, _cpu_seconds(database))
    latencies.sort()
    return {
        "saves": len(latencies),
        "median_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "rps": len(latencies) / wall,
        "resets": len(resets),
        "web_cpu_ms": web_cpu / max(1, len(latencies)) * 1000,
        "db_cpu_ms": database_cpu / max(1, len(latencies)) * 1000,
    }


def _resets(result: dict[str, float]) -> str:
    return f"  ({result['resets']} connections reset by the server)" if result["resets"] else ""


def _cpu_line(result: dict[str, float]) -> str:
    return f"CPU per request: web {result['web_cpu_ms']:5.1f} ms, PostgreSQL {result['db_cpu_ms']:5.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 2), help="as scripts/run.sh: one per core, at most 4")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", 4)), help="as the Procfile: WEB_THREADS, else 4")
    parser.add_argument("--rewrite", action="store_true", help="change all 100 polygons on every save")
    parser.add_argument("--lockstep", action="store_true", help="every client saves at the same moment each second (a burst of 32)")
    parser.add_argument("--put", action="store_true", help="send the whole set on every save (PUT), not what changed (PATCH)")
    args = parser.parse_args()
    global WHOLE_SET, LOCKSTEP
    WHOLE_SET, LOCKSTEP = args.put, args.lockstep
    data_dir = tempfile.mkdtemp(prefix="annotator-bench-")
    env = bench_env(data_dir)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("ANNOTATOR_", "DJANGO_", "DEBUG"))})
    tokens, label = setup(args.clients)
    server, url = start_web(env, workers=args.workers, threads=args.threads)
    global SERVER_PID
    SERVER_PID = server.pid
    try:
        database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
        print(f"API save benchmark: {args.clients} clients, 100 polygons x 50 vertices per save, gunicorn {args.workers} workers x {args.threads} threads, {database}, {os.cpu_count()} cores")
        print("  load average before: {:.1f} {:.1f} {:.1f} (other work on the machine inflates the latencies)".format(*os.getloadavg()))
        run(url, tokens, label, 3, 1.0, args.rewrite)  # warm-up (and the first full save of every image)
        print(f"  each save changes {'all 100 polygons' if args.rewrite else 'one vertex of one polygon'}"
              f" and sends {'the whole set (PUT)' if args.put else 'what changed (PATCH, with the order of the set)'}")
        for name, pace in (("closed loop", None), ("autosave pace (1 save/s per client)", 1.0)):
            result = run(url, tokens, label, args.seconds, pace, args.rewrite)
            print(f"  {name:<38} saves={result['saves']:<6} median={result['median_ms']:7.1f} ms  p99={result['p99_ms']:7.1f} ms  {result['rps']:6.1f} req/s")
            print(f"  {'':<38} {_cpu_line(result)}{_resets(result)}")
        # Autosave pace against its floor, in alternating halves so that load drift hits both.
        saves, floors = [], []
        for half in range(4):
            is_floor = half % 2 == 0
            result = run(url, tokens, label, args.seconds / 2, 1.0, args.rewrite, floor=is_floor)
            (floors if is_floor else saves).append(result)
        save_median = statistics.median(r["median_ms"] for r in saves)
        floor_median = statistics.median(r["median_ms"] for r in floors)
        print("  autosave pace, interleaved with a floor (GET /api/images/<id>/, same clients and pace):")
        print(f"    save  median={save_median:7.1f} ms  p99={max(r['p99_ms'] for r in saves):7.1f} ms  {_cpu_line(saves[-1])}")
        print(f"    floor median={floor_median:7.1f} ms  p99={max(r['p99_ms'] for r in floors):7.1f} ms  {_cpu_line(floors[-1])}"
              f"    save / floor = {save_median / floor_median:4.1f}x")
        print("  load average after: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
