"""The Quality page and its API: per annotator and per label scores against ground truth, time per
object, F1 by day and over the session, the conflicts linking into the editor, CSV/JSON downloads."""
from __future__ import annotations

import csv
import io

import pytest

from annotator.annotations.services import annotations_replace
from annotator.images.models import Image, ImageStatus
from tests.factories import make_images, polygon_geometry, square


def _ground_truth_image(world) -> Image:
    """An accepted image (a cat and a dog, drawn by annotator2) marked as ground truth, handed out on every claim."""
    cat, dog = world.labels
    image = make_images(world.project, 1, width=100, height=80)[0]
    annotations_replace(image=image, user=world.users["manager"], base_version=0, items=[
        {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
        {"label": dog.pk, "geometry": polygon_geometry(square(50, 20, 40))},
    ])
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.ACCEPTED, assignee=world.users["annotator2"], reviewer=world.users["reviewer"])
    manager = world.client("manager")
    assert manager.post(f"/api/images/{image.pk}/ground-truth/").status_code == 201
    assert manager.patch(f"/api/projects/{world.project.pk}/", {"ground_truth_rate": 1.0}, format="json").status_code == 200
    return image


def _attempt(world, persona: str, image: Image, drawn: list[dict], seconds: float) -> None:
    client = world.client(persona)
    claimed = client.post(f"/api/projects/{world.project.pk}/queue/next/")
    assert claimed.status_code == 200 and claimed.json()["image"]["id"] == image.pk, claimed.content
    assert client.post(f"/api/images/{image.pk}/time/", {"seconds": seconds}, format="json").status_code == 201
    assert client.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json").status_code == 200
    assert client.post(f"/api/images/{image.pk}/time/", {"seconds": 1}, format="json").status_code == 201  # counts the objects
    assert client.post(f"/api/images/{image.pk}/submit/").status_code == 200


@pytest.fixture
def scored(world) -> Image:
    """annotator gets both objects right; the admin draws the dog as a cat, loosely, and a cat that is not there."""
    cat, dog = world.labels
    image = _ground_truth_image(world)
    _attempt(world, "annotator", image, [
        {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
        {"label": dog.pk, "geometry": polygon_geometry(square(50, 20, 40))},
    ], seconds=19)
    _attempt(world, "admin", image, [
        {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
        {"label": cat.pk, "geometry": polygon_geometry(square(56, 20, 34))},  # IoU 0.72: wrong label, low overlap
        {"label": cat.pk, "geometry": polygon_geometry(square(0, 60, 10))},  # not there
    ], seconds=59)
    return image


def _report(world) -> dict:
    response = world.client("manager").get(f"/api/projects/{world.project.pk}/quality/")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_report_gives_each_annotator_scores_and_time_per_object(world, scored) -> None:
    report = _report(world)
    assert (report["ground_truth_images"], report["attempts"], report["ground_truth_rate"]) == (1, 2, 1.0)
    people = {row["username"]: row for row in report["annotators"]}
    good, loose = people["annotator"], people["admin"]
    assert (good["tp"], good["fp"], good["fn"], good["f1"], good["mean_iou"]) == (2, 0, 0, 1.0, 1.0)
    assert (loose["tp"], loose["fp"], loose["fn"]) == (1, 2, 1)
    assert loose["f1"] == pytest.approx(2 / 5)
    assert loose["mean_iou"] == pytest.approx((1 + 34 * 34 / (40 * 40)) / 2)
    assert good["seconds_per_object"] == pytest.approx(20 / 2) and loose["seconds_per_object"] == pytest.approx(60 / 3)
    assert [d["f1"] for d in good["over_time"]] == [1.0] and good["over_time"][0]["attempts"] == 1
    assert [b["mean"] for b in loose["fatigue"] if b["count"]] == [pytest.approx(2 / 5)]
    kinds = sorted((c["annotator"], c["kind"]) for c in report["conflicts"])
    assert kinds == [("admin", "extra"), ("admin", "low_overlap"), ("admin", "wrong_label")]
    labels = {row["name"]: row for row in report["labels"]}
    assert (labels["cat"]["tp"], labels["dog"]["tp"], labels["dog"]["fn"]) == (2, 1, 1)


def test_conflicts_open_the_editor_at_the_image_with_the_attempt(world, scored, client) -> None:
    report = _report(world)
    wrong = next(c for c in report["conflicts"] if c["kind"] == "wrong_label")
    assert (wrong["truth_label"], wrong["attempt_label"], wrong["image"]) == ("dog", "cat", scored.pk)
    assert wrong["editor_url"] == f"/images/{scored.pk}/edit/?attempt={wrong['attempt']}"
    client.force_login(world.users["manager"])
    page = client.get(wrong["editor_url"])
    assert page.status_code == 200 and f'data-image-id="{scored.pk}"' in page.content.decode()


def test_the_csv_and_json_downloads_hold_the_apis_numbers(world, scored) -> None:
    report = _report(world)
    client = world.client("manager")
    url = f"/api/projects/{world.project.pk}/quality/"
    as_json = client.get(url, {"format": "json"})
    assert as_json.status_code == 200 and "attachment" in as_json["Content-Disposition"]
    assert as_json.json() == report
    response = client.get(url, {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    for person in report["annotators"]:
        row = rows[person["username"]]
        for key in ("attempts", "tp", "fp", "fn"):
            assert int(row[key]) == person[key]
        for key in ("precision", "recall", "f1", "mean_iou", "seconds_per_object"):
            assert float(row[key]) == pytest.approx(person[key])
    conflicts = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv", "table": "conflicts"}).content.decode())))
    assert sorted(c["kind"] for c in conflicts) == sorted(c["kind"] for c in report["conflicts"])
    assert {c["editor_url"] for c in conflicts} == {c["editor_url"] for c in report["conflicts"]}
    fatigue = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv", "table": "fatigue"}).content.decode())))
    assert {r["username"] for r in fatigue} == {"annotator", "admin"}


def test_a_bad_table_or_bin_is_refused_with_a_reason(world, scored) -> None:
    client = world.client("manager")
    url = f"/api/projects/{world.project.pk}/quality/"
    bad = client.get(url, {"format": "csv", "table": "passwords"})
    assert bad.status_code == 400 and "passwords" in bad.content.decode()
    assert client.get(url, {"bin_minutes": "0"}).status_code == 400


def test_the_quality_page_shows_a_manager_the_numbers_and_charts(world, scored, client) -> None:
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/quality/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="nav-quality"' in html
    assert 'data-username="annotator"' in html and 'data-username="admin"' in html
    assert "0.400" in html and "1.000" in html  # the two F1s
    assert "20 s" in html and "10 s" in html  # time per object
    for chart in ("chart-scores", "chart-over-time", "chart-fatigue"):
        assert f'data-testid="{chart}"' in html
    assert f'href="/images/{scored.pk}/edit/?attempt=' in html
    assert "wrong label" in html and "<script>" not in html.split("<main", 1)[-1].split("</main>")[0]


def test_annotators_and_reviewers_do_not_see_the_quality_page(world, scored, client) -> None:
    for persona in ("annotator", "reviewer"):
        client.force_login(world.users[persona])
        assert client.get(f"/projects/{world.project.pk}/quality/").status_code == 403
        assert 'data-testid="nav-quality"' not in client.get(f"/projects/{world.project.pk}/time/").content.decode()
        assert world.client(persona).get(f"/api/projects/{world.project.pk}/quality/").status_code == 403
    client.force_login(world.users["outsider"])
    assert client.get(f"/projects/{world.project.pk}/quality/").status_code == 404


def test_an_empty_project_says_how_to_start(world, client) -> None:
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/quality/")
    assert page.status_code == 200 and 'data-testid="quality-empty"' in page.content.decode()


def test_an_attempt_with_its_objects_is_the_managers_to_read(world, scored) -> None:
    wrong = next(c for c in _report(world)["conflicts"] if c["kind"] == "wrong_label")
    url = f"/api/ground-truth/attempts/{wrong['attempt']}/"
    attempt = world.client("manager").get(url)
    assert attempt.status_code == 200
    assert (attempt.json()["annotator"], attempt.json()["image"], len(attempt.json()["annotations"])) == ("admin", scored.pk, 3)
    assert attempt.json()["f1"] == pytest.approx(2 / 5)
    assert world.client("annotator").get(url).status_code == 403
    assert world.client("reviewer").get(url).status_code == 403
    assert world.client("outsider").get(url).status_code == 404


def test_the_report_lists_the_lowest_agreement_first(world, scored, client) -> None:
    low, high = make_images(world.project, 2, width=50, height=50)
    Image.objects.filter(pk=low.pk).update(agreement=0.2, status=ImageStatus.SUBMITTED)
    Image.objects.filter(pk=high.pk).update(agreement=0.9, status=ImageStatus.SUBMITTED)
    agreement = _report(world)["agreement"]
    assert agreement["images"] == 2 and agreement["mean"] == pytest.approx(0.55)
    assert [row["id"] for row in agreement["lowest"]] == [low.pk, high.pk]
    assert agreement["lowest"][0]["editor_url"] == f"/images/{low.pk}/edit/?mode=review"
    client.force_login(world.users["manager"])
    html = client.get(f"/projects/{world.project.pk}/quality/").content.decode()
    assert 'data-testid="quality-agreement"' in html and "0.55" in html
