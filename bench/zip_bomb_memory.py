"""Peak memory of the reported zip-bomb upload: a 1 MB zip holding a 1 GiB `bomb.png`.

Runs `POST /api/projects/<id>/images/` with the bomb through Django's test client in a fresh
process (its own data dir and SQLite database), and prints the process's peak RSS before and
after the request (resource.getrusage), the request's time and the answer. Point `--repo` at
another checkout (a `git worktree` of an older commit) to measure that code the same way.
Usage: .venv/bin/python bench/zip_bomb_memory.py [--repo PATH] [--gib 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import io, json, os, resource, struct, sys, time, zipfile, zlib
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "annotator.settings"
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from annotator.projects.models import Membership, Project

size = int(float(sys.argv[1]) * (1 << 30))
mib = 1 << 20
compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
block = compressor.compress(b"\0" * mib) + compressor.flush(zlib.Z_FULL_FLUSH)
data = block * (size // mib) + compressor.flush()
crc = 0
for _ in range(size // mib):
    crc = zlib.crc32(b"\0" * mib, crc)
name = b"bomb.png"
local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0) + name
central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0, 0, 0, 0, 0, 0) + name
end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
archive = local + data + central + end
del data

user = get_user_model().objects.create_user("bench", password="x" * 12)
project = Project.objects.create(name="bench")
Membership.objects.create(project=project, user=user, role="manager")
client = APIClient()
client.force_authenticate(user)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
response = client.post(f"/api/projects/{project.pk}/images/",
                       {"files": [SimpleUploadedFile("photos.zip", archive, "application/zip")]}, format="multipart")
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"zip_bytes": len(archive), "member_bytes": size, "status": response.status_code,
                  "detail": response.json().get("detail", "")[:120], "seconds": round(elapsed, 2),
                  "peak_rss_before_mib": round(before / 1024, 1), "peak_rss_after_mib": round(after / 1024, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--gib", type=float, default=1.0, help="size of the bomb's member in GiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bomb-") as data_dir:
        env = {**os.environ, "ANNOTATOR_DATA_DIR": data_dir, "DEBUG": "0", "ANNOTATOR_HTTPS": "0", "ALLOWED_HOSTS": "testserver"}
        env.pop("DATABASE_URL", None)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.gib)], cwd=args.repo, env=env, capture_output=True, text=True
        )
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"repo: {args.repo}")
    for key, value in figures.items():
        print(f"  {key}: {value}")
    print(f"  request's own peak: {figures['peak_rss_after_mib'] - figures['peak_rss_before_mib']:.1f} MiB above the process before it")


if __name__ == "__main__":
    main()
