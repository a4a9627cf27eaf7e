"""Simulated quality-control run through the HTTP API: do the quality reports rank annotators right?

Starts gunicorn as `make run` does (bench/_server.py) on a temporary data dir (SQLite unless
DATABASE_URL is set) and drives it the way people would, with API tokens:

- an administrator creates a project with the dataset's labels and its members;
- the manager uploads the images of a COCO dataset (default: coco_tinycoco, train and val) from
  /work/shared/datasets; the dataset's own objects are the truth of every image;
- an expert claims --truth images from the queue and draws their true objects, a reviewer
  accepts them, the manager marks them as ground truth; the manager then sets the project's
  ground_truth_rate (--rate) and consensus_annotators = 2 (two annotators per image);
- three synthetic annotators work the queue in turn (queue next, time reports, save, submit) on
  the rest, drawing every true object with their own faults (seeded):
    good:   every object, outlines jittered by 2%, 14 s per object;
    medium: misses 15%, jitter 6%, 9 s per object;
    poor:   misses 35%, 15% with a wrong label, jitter 15%, 6 s per object;
  once the queue is empty, each keeps asking for work a few more times (--polls), as someone
  reloading the page does, so that the rest of the ground-truth draws come;
- the manager reads GET /api/projects/<id>/quality/ (and its CSV) and a reviewer the review queue.

Prints per annotator the ground-truth attempts, precision, recall, F1, mean IoU, time per object
and the fatigue curve, whether the report ranks good > medium > poor on F1 and mean IoU, and the
agreement of the image the review queue hands out first against the others waiting.

    nice -n 10 .venv/bin/python bench/quality_sim.py [--dataset coco_tinycoco|fruits_nuts] [--truth 8] [--rate 0.2]
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import bench_env, start_web  # noqa: E402

DATASETS = Path("/work/shared/datasets")
PROFILES: dict[str, dict[str, float]] = {
    "good": {"miss": 0.0, "wrong": 0.0, "jitter": 0.02, "seconds": 14},
    "medium": {"miss": 0.15, "wrong": 0.0, "jitter": 0.06, "seconds": 9},
    "poor": {"miss": 0.35, "wrong": 0.15, "jitter": 0.15, "seconds": 6},
}
PEOPLE = ("admin", "manager", "expert", "reviewer", *PROFILES)


# --------------------------------------------------------------------------------------------
# The dataset: images and their true objects (COCO polygons; crowd RLEs left out)
# --------------------------------------------------------------------------------------------


def load_dataset(name: str) -> tuple[list[Path], dict[str, list[dict[str, Any]]], list[str]]:
    """Image files, their objects by file name ({category, parts}) and the category names used."""
    root = DATASETS / name
    if name == "fruits_nuts":
        pairs = [(root / "trainval.json", root / "images")]
    else:
        pairs = [(root / "annotations" / f"instances_{s}.json", root / "images" / s) for s in ("train2017", "val2017")]
    files, truth, used = [], {}, set()
    for annotation_file, folder in pairs:
        coco = json.loads(annotation_file.read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in coco["annotations"]:
            if a.get("iscrowd") or not isinstance(a["segmentation"], list):
                continue
            parts = [[[p[k], p[k + 1]] for k in range(0, len(p) - 1, 2)] for p in a["segmentation"] if len(p) >= 6]
            if parts:
                by_image.setdefault(a["image_id"], []).append({"category": names[a["category_id"]], "parts": parts})
        for image in coco["images"]:
            objects = by_image.get(image["id"], [])
            if objects and (folder / image["file_name"]).exists():
                files.append(folder / image["file_name"])
                truth[image["file_name"]] = objects
                used.update(o["category"] for o in objects)
    return files, truth, sorted(used)


def geometry(parts: list[list[list[float]]]) -> dict[str, Any]:
    return {"type": "polygons", "polygons": [{"exterior": part, "holes": []} for part in parts]}


def drawn_by(profile: dict[str, float], objects: list[dict[str, Any]], labels: dict[str, int], rng: random.Random) -> list[dict[str, Any]]:
    """What an annotator of this profile draws on an image with these true objects."""
    out = []
    for obj in objects:
        if rng.random() < profile["miss"]:
            continue
        name = obj["category"]
        if rng.random() < profile["wrong"]:
            name = rng.choice([n for n in labels if n != name] or [name])
        parts = []
        for part in obj["parts"]:
            xs, ys = [p[0] for p in part], [p[1] for p in part]
            cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
            size = math.sqrt(max(1.0, (max(xs) - min(xs)) * (max(ys) - min(ys))))
            scale = 1 + rng.gauss(0, profile["jitter"])
            dx, dy = rng.gauss(0, profile["jitter"] * size), rng.gauss(0, profile["jitter"] * size)
            parts.append([[round(cx + (x - cx) * scale + dx, 2), round(cy + (y - cy) * scale + dy, 2)] for x, y in part])
        out.append({"label": labels[name], "geometry": geometry(parts)})
    return out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def tokens() -> dict[str, str]:
    """The people and their API tokens (the one thing made in-process: accounts, as an admin's shell would)."""
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotator.projects.services import user_create

    call_command("migrate", verbosity=0)
    out = {}
    for name in PEOPLE:
        user = user_create(username=name, password="bench-pass-123")
        if name == "admin":
            user.is_superuser = user.is_staff = True
            user.save()
        out[name] = Token.objects.create(user=user).key
    return out


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.session = url, requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def __call__(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}/api{path}", timeout=120, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        if response.status_code == 204:
            return None
        return response.json() if response.headers.get("Content-Type", "").startswith("application/json") else response.text


def images_of(api: Api, project: int, **filters: str) -> list[dict[str, Any]]:
    """Every image of the project the list API gives, page by page."""
    out, page = [], 1
    while True:
        body = api("get", f"/projects/{project}/images/", params={**filters, "page": page})
        out += body["results"]
        if not body.get("next"):
            return out
        page += 1


def run(url: str, keys: dict[str, str], args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    api = {name: Api(url, key) for name, key in keys.items()}
    files, truth, categories = load_dataset(args.dataset)
    project = api["admin"]("post", "/projects/", json={"name": f"quality sim ({args.dataset})", "labels": [{"name": n} for n in categories]})
    pid = project["id"]
    labels = {label["name"]: label["id"] for label in project["labels"]}
    for name in PEOPLE[1:]:
        role = "manager" if name == "manager" else "reviewer" if name == "reviewer" else "annotator"
        api["admin"]("post", f"/projects/{pid}/members/", json={"username": name, "role": role})
    for k in range(0, len(files), 10):
        batch = files[k:k + 10]
        api["manager"]("post", f"/projects/{pid}/images/", files=[("files", (f.name, f.read_bytes())) for f in batch])
    names = {image["id"]: image["original_name"] for image in images_of(api["manager"], pid)}
    print(f"{args.dataset}: {len(files)} images, {sum(len(v) for v in truth.values())} objects, {len(categories)} labels; server {url}")

    # Ground truth: the expert draws the truth, the reviewer accepts, the manager marks it.
    marked = []
    for _ in range(args.truth):
        image = api["expert"]("post", f"/projects/{pid}/queue/next/")["image"]
        objects = [{"label": labels[o["category"]], "geometry": geometry(o["parts"])} for o in truth[names[image["id"]]]]
        api["expert"]("put", f"/images/{image['id']}/annotations/", json={"version": image["version"], "annotations": objects})
        api["expert"]("post", f"/images/{image['id']}/submit/")
        taken = api["reviewer"]("post", f"/projects/{pid}/review/next/")["image"]
        api["reviewer"]("post", f"/images/{taken['id']}/review/", json={"decision": "accept", "version": taken["version"]})
        api["manager"]("post", f"/images/{taken['id']}/ground-truth/")
        marked.append(taken["id"])
    api["manager"]("patch", f"/projects/{pid}/", json={"ground_truth_rate": args.rate, "consensus_annotators": 2})
    print(f"ground truth: {len(marked)} images ({len(marked) / len(files):.0%} of the dataset), rate {args.rate}, 2 annotators per image")

    # The three annotators work the queue in turn.
    seeds = {name: random.Random(rng.random()) for name in PROFILES}
    idle = dict.fromkeys(PROFILES, 0)
    done = dict.fromkeys(PROFILES, 0)
    started = time.monotonic()
    while any(n < args.polls for n in idle.values()):
        for name, profile in PROFILES.items():
            if idle[name] >= args.polls:
                continue
            claimed = api[name]("post", f"/projects/{pid}/queue/next/")
            if claimed is None:
                idle[name] += 1
                continue
            image = claimed["image"]
            current = api[name]("get", f"/images/{image['id']}/annotations/")
            drawn = drawn_by(profile, truth[names[image["id"]]], labels, seeds[name])
            seconds = max(1.0, sum(seeds[name].gauss(profile["seconds"], profile["seconds"] / 4) for _ in drawn))
            for chunk in [min(600.0, seconds - s) for s in range(0, math.ceil(seconds), 600)]:
                api[name]("post", f"/images/{image['id']}/time/", json={"seconds": max(1.0, chunk)})
            api[name]("put", f"/images/{image['id']}/annotations/", json={"version": current["version"], "annotations": drawn})
            api[name]("post", f"/images/{image['id']}/time/", json={"seconds": 1})  # the last report counts the objects drawn
            api[name]("post", f"/images/{image['id']}/submit/")
            done[name] += 1
    print(f"annotators: {done} images submitted in {time.monotonic() - started:.0f} s")

    report = api["manager"]("get", f"/projects/{pid}/quality/", params={"bin_minutes": 1})
    table = api["manager"]("get", f"/projects/{pid}/quality/", params={"format": "csv"})
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(table))}
    people = {row["username"]: row for row in report["annotators"]}
    print(f"\nquality report: {report['ground_truth_images']} ground-truth images, {report['attempts']} scored attempts, "
          f"{len(report['conflicts'])} conflicts")
    print(f"{'annotator':<9} {'GT att.':>7} {'prec.':>6} {'recall':>6} {'F1':>6} {'mIoU':>6} {'s/obj':>6}  fatigue (F1 by minute into the session)")
    for name in PROFILES:
        p = people.get(name)
        if p is None:
            print(f"{name:<9} no ground-truth attempt")
            continue
        assert math.isclose(float(rows[name]["f1"]), p["f1"]), "the CSV and the API disagree"
        curve = " ".join(f"{b['start']:.0f}:{b['mean']:.2f}" for b in p["fatigue"] if b["count"])
        print(f"{name:<9} {p['attempts']:>7} {p['precision']:6.3f} {p['recall']:6.3f} {p['f1']:6.3f} {p['mean_iou']:6.3f} "
              f"{p['seconds_per_object']:6.1f}  {curve}")
    kinds: dict[str, dict[str, int]] = {}
    for c in report["conflicts"]:
        kinds.setdefault(c["annotator"], {}).setdefault(c["kind"], 0)
        kinds[c["annotator"]][c["kind"]] += 1
    for name in PROFILES:
        print(f"  conflicts of {name}: {kinds.get(name, {})}")
    for measure in ("f1", "mean_iou"):
        values = [people[n][measure] if n in people else None for n in PROFILES]
        ranked = all(a is not None and b is not None and a > b for a, b in zip(values, values[1:]))
        print(f"ranking on {measure}: good > medium > poor: {'yes' if ranked else 'NO'}")

    summary = report["agreement"]
    if summary["images"]:
        print(f"agreement (quality report): {summary['images']} consensus images, mean {summary['mean']:.3f}, lowest "
              + ", ".join(f"{row['agreement']:.2f}" for row in summary["lowest"][:5]))
    # Reviewers: the lowest agreement first.
    waiting = images_of(api["manager"], pid, status="submitted")
    agreements = sorted(i["agreement"] for i in waiting if i.get("agreement") is not None)
    first = api["reviewer"]("post", f"/projects/{pid}/review/next/")
    if first and agreements:
        print(f"review queue: {len(agreements)} images waiting, agreement min {agreements[0]:.3f} median "
              f"{statistics.median(agreements):.3f} max {agreements[-1]:.3f}; the reviewer is handed {first['image']['agreement']:.3f} first"
              f" ({'the lowest' if math.isclose(first['image']['agreement'], agreements[0]) else 'NOT the lowest'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["coco_tinycoco", "fruits_nuts"], default="coco_tinycoco")
    parser.add_argument("--truth", type=int, default=8, help="ground-truth images")
    parser.add_argument("--rate", type=float, default=0.2, help="the project's ground_truth_rate")
    parser.add_argument("--polls", type=int, default=25, help="asks for work per annotator once the queue is empty")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="annotator-quality-sim-")
    env = bench_env(data_dir)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("ANNOTATOR_", "DJANGO_", "DEBUG"))})
    keys = tokens()
    server, url = start_web(env, workers=args.workers, threads=2)
    try:
        run(url, keys, args)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
