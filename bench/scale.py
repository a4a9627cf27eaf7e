"""Benchmark: queues, image list, dashboard and stats of one project at 10,000 → 1,000,000 images.

On PostgreSQL (a database of its own, created and dropped here; DATABASE_URL names the server).
Image rows are inserted synthetically in SQL (no files: nothing here reads them), in the mix of
a project under way: 90% new and unassigned, the rest in progress, submitted, in review, accepted
or rejected across ten annotators and two reviewers, priorities 0-2. Requests go through
Django's test client in this process (middleware, views, serializers, the database; no HTTP).

At each size every request runs once per round, rounds interleaved with a floor request
(`GET /api/projects/<id>/labels/`: log-in, access check, one tiny query), so the machine's load
drifts over all of them alike; the figures are medians, with the ratio to the floor. A queue
request takes an image; it is put back between rounds (not timed).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/scale.py [--max 100000] [--rounds 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [10_000, 100_000, 1_000_000]

# (share of the rows, status, has an assignee, has a reviewer, submitted)
MIX = [
    (0.90, "new", False, False, False),
    (0.03, "in_progress", True, False, False),
    (0.025, "submitted", True, False, True),
    (0.01, "in_review", True, True, True),
    (0.025, "accepted", True, True, True),
    (0.01, "rejected", True, True, True),
]


def _database(base_url: str) -> tuple[str, str]:
    import psycopg

    name = f"annotator_scale_{os.getpid()}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base_url.rpartition("/")
    return name, f"{head}/{name}"


def _drop(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert(project_id: int, start: int, stop: int, annotators: list[int], reviewers: list[int]) -> None:
    """Rows start..stop-1 (the g-th row's status from MIX by g's position in each block of 1,000)."""
    from django.db import connection

    cases, lower = [], 0.0
    for share, status, assigned, reviewed, submitted in MIX:
        upper = lower + share * 1000
        cases.append((int(lower), int(upper), status, assigned, reviewed, submitted))
        lower = upper

    def case(pick: Callable[[tuple], str]) -> str:
        return "CASE " + " ".join(f"WHEN mod(g, 1000) < {hi} THEN {pick(c)}" for c in cases for hi in [c[1]]) + " END"

    annotator_array = "ARRAY[" + ",".join(map(str, annotators)) + "]"
    reviewer_array = "ARRAY[" + ",".join(map(str, reviewers)) + "]"
    status = case(lambda c: f"'{c[2]}'")
    assignee = case(lambda c: f"({annotator_array})[1 + mod(g, {len(annotators)})]" if c[3] else "NULL")
    reviewer = case(lambda c: f"({reviewer_array})[1 + mod(g, {len(reviewers)})]" if c[4] else "NULL")
    submitted = case(lambda c: "now() - (g || ' seconds')::interval" if c[5] else "NULL")
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO images_image (project_id, file, thumbnail, original_name, width, height, checksum, status,
                assignee_id, reviewer_id, priority, uncertainty, version, submitted_at, created_at, updated_at)
            SELECT %s, 'projects/x/' || g || '.jpg', '', 'img_' || g || '.jpg', 640, 480, lpad(g::text, 64, '0'),
                {status}, {assignee}, {reviewer}, mod(g::bigint * 7919, 3), mod(g::bigint * 104729, 1000) / 1000.0, 0, {submitted}, now(), now()
            FROM generate_series(%s, %s) AS g
        """, [project_id, start, stop - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=SIZES[-1], help="largest size (100000 to stop there)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not base_url.startswith("postgres"):
        sys.exit("bench/scale.py runs on PostgreSQL: set DATABASE_URL to a server (its database is left alone)")
    name, url = _database(base_url)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "annotator.settings", "DEBUG": "0",
                       "ANNOTATOR_HTTPS": "0", "ALLOWED_HOSTS": "testserver"})
    try:
        _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        _drop(base_url, name)


def _run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from annotator.images.models import Image, ImageStatus
    from annotator.projects.models import Membership, Project

    users = get_user_model().objects
    manager = users.create_user(f"manager-{uuid.uuid4().hex[:6]}", password="x")
    annotators = [users.create_user(f"annotator{i}-{uuid.uuid4().hex[:6]}", password="x") for i in range(10)]
    reviewers = [users.create_user(f"reviewer{i}-{uuid.uuid4().hex[:6]}", password="x") for i in range(2)]
    taker, checker = users.create_user("taker", password="x"), users.create_user("checker", password="x")
    project = Project.objects.create(name="scale")
    Membership.objects.create(project=project, user=manager, role="manager")
    Membership.objects.create(project=project, user=taker, role="annotator")
    Membership.objects.create(project=project, user=checker, role="reviewer")
    for person in annotators:
        Membership.objects.create(project=project, user=person, role="annotator")
    for person in reviewers:
        Membership.objects.create(project=project, user=person, role="reviewer")
    clients = {}
    for who, user in (("manager", manager), ("taker", taker), ("checker", checker)):
        clients[who] = Client()
        clients[who].force_login(user)
    try:
        from annotator.images.services import image_counts_compact  # the kept counts (after this change)
    except ImportError:
        image_counts_compact = None  # type: ignore[assignment]

    p = project.pk
    taken: dict[str, int | None] = {"queue": None, "review": None}

    def queue_next() -> None:
        response = clients["taker"].post(f"/api/projects/{p}/queue/next/")
        assert response.status_code == 200, response.status_code
        taken["queue"] = response.json()["image"]["id"]

    def review_next() -> None:
        response = clients["checker"].post(f"/api/projects/{p}/review/next/")
        assert response.status_code == 200, response.status_code
        taken["review"] = response.json()["image"]["id"]

    def put_back() -> None:
        if taken["queue"]:
            Image.objects.filter(pk=taken["queue"]).update(status=ImageStatus.NEW, assignee=None)
        if taken["review"]:
            Image.objects.filter(pk=taken["review"]).update(status=ImageStatus.SUBMITTED, reviewer=None)
        taken.update(queue=None, review=None)

    def get(path: str) -> Callable[[], None]:
        def call() -> None:
            response = clients["manager"].get(path)
            assert response.status_code == 200, (path, response.status_code)
        return call

    size_now = 0
    requests: dict[str, Callable[[], None]] = {}
    table: dict[str, dict[int, float]] = {}
    sizes = [s for s in SIZES if s <= args.max]
    for size in sizes:
        started = time.perf_counter()
        step = 100_000
        for start in range(size_now, size, step):
            _insert(p, start, min(size, start + step), [a.pk for a in annotators], [r.pk for r in reviewers])
        size_now = size
        if image_counts_compact is not None:
            image_counts_compact()  # what beat does every minute
        with connection.cursor() as cursor:
            # What autovacuum does after a bulk load: statistics, and the folded count rows' dead
            # index entries cleared (a million of them otherwise sit in every count's index scan).
            cursor.execute("VACUUM ANALYZE")
        print(f"\n{size:,} images (inserted, vacuumed and analysed in {time.perf_counter() - started:.0f}s)")
        last_page = (size + 49) // 50
        filtered = Image.objects.filter(project=project, status=ImageStatus.SUBMITTED).count()
        requests = {
            "floor: labels": get(f"/api/projects/{p}/labels/"),
            "queue next": queue_next,
            "review next": review_next,
            "image list, page 1": get(f"/api/projects/{p}/images/"),
            "image list, submitted": get(f"/api/projects/{p}/images/?status=submitted"),
            "image list, submitted last": get(f"/api/projects/{p}/images/?status=submitted&page={(filtered + 49) // 50}"),
            "image list, last page": get(f"/api/projects/{p}/images/?page={last_page}"),
            "dashboard page": get(f"/projects/{p}/"),
            "stats": get(f"/api/projects/{p}/stats/"),
        }
        times: dict[str, list[float]] = {label: [] for label in requests}
        names = list(requests)
        for round_ in range(args.rounds + 2):  # two warm-up rounds
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for label in order:
                t0 = time.perf_counter()
                requests[label]()
                elapsed = (time.perf_counter() - t0) * 1000
                if round_ >= 2:
                    times[label].append(elapsed)
            put_back()
        floor = statistics.median(times["floor: labels"])
        for label in names:
            median = statistics.median(times[label])
            table.setdefault(label, {})[size] = median
            print(f"  {label:<28} median {median:7.1f} ms   p90 {sorted(times[label])[int(len(times[label]) * 0.9) - 1]:7.1f} ms"
                  f"   {median / floor:5.1f}x floor")

    print("\nmedian ms by size, then as multiples of that size's floor (growth: largest / smallest size)")
    print(f"  {'':<28}" + "".join(f"{s:>11,}" for s in sizes) + "    growth" + "".join(f"{s:>11,}" for s in sizes)
          + "  x-floor growth   < 50 ms")
    floors = table["floor: labels"]
    for label, by_size in table.items():
        values = [by_size[s] for s in sizes]
        ratios = [by_size[s] / floors[s] for s in sizes]
        print(f"  {label:<28}" + "".join(f"{v:11.1f}" for v in values) + f"   {values[-1] / values[0]:6.1f}x"
              + "".join(f"{r:10.1f}x" for r in ratios) + f"   {ratios[-1] / ratios[0]:6.1f}x"
              + f"           {'yes' if max(values) < 50 else 'NO'}")
    print(f"  (sizes grow {sizes[-1] / sizes[0]:.0f}x)")


if __name__ == "__main__":
    main()
