"""Small things a first day shows: error pages, job errors by role, filters and checkboxes in words."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from annotator.datasets.models import DatasetVersion
from annotator.jobs.models import Job
from annotator.web.templatetags.web_extras import basename, dirname, export_filters, short_error

pytestmark = pytest.mark.django_db

WEIGHTS_ERROR = (
    "could not load pretrained COCO weights MaskRCNN_ResNet50_FPN_Weights.COCO_V1 for maskrcnn_resnet50_fpn from "
    "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth (URLError: <urlopen error [Errno -3] "
    "Temporary failure in name resolution>). This machine probably has no internet access: download the file elsewhere "
    "and point the ANNOTATOR_COCO_CHECKPOINT setting at it."
)


def _browser(world, persona: str) -> Client:
    client = Client()
    client.force_login(world.users[persona])
    return client


def test_a_manager_opening_new_project_gets_the_sites_error_page(world):
    response = _browser(world, "manager").get("/projects/new/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-testid="error-page"' in html and "Only administrators can create projects." in html
    assert 'class="topbar"' in html  # the site's layout, not a bare text response


def test_unknown_pages_get_the_sites_not_found_page(world):
    response = _browser(world, "annotator").get("/projects/999999/")
    assert response.status_code == 404 and 'data-testid="error-page"' in response.content.decode()


def test_job_errors_are_a_short_line_for_annotators_and_folded_details_for_managers(world):
    Job.objects.create(kind="preannotate", project=world.project, state="failed", message="Failed", error=WEIGHTS_ERROR)
    url = f"/projects/{world.project.pk}/"
    manager = _browser(world, "manager").get(url).content.decode()
    assert '<details class="job-error"' in manager and "Temporary failure in name resolution" in manager
    annotator = _browser(world, "annotator").get(url).content.decode()
    assert "a manager can see why" in annotator
    assert "ANNOTATOR_COCO_CHECKPOINT" not in annotator and "download.pytorch.org" not in annotator


def test_short_errors_are_the_first_sentence():
    assert short_error("Broken. More detail here.") == "Broken."
    assert short_error("x" * 300).endswith("…") and len(short_error("x" * 300)) == 100
    assert short_error(WEIGHTS_ERROR).startswith("could not load pretrained COCO weights")


def test_dataset_versions_show_their_filters_in_words(world):
    DatasetVersion.objects.create(
        project=world.project, name="v1", format="coco", filters={"status": ["accepted"], "labels": ["cat"], "include_images": True},
        manifest={"counts": {"images": 1, "annotations": 2}}, file=ContentFile(b"zip", name="v1.zip"), sha256="0" * 64, size=3,
    )
    html = _browser(world, "manager").get(f"/projects/{world.project.pk}/datasets/").content.decode()
    assert "accepted images · labels cat · with the image files" in html
    assert "[&#x27;accepted&#x27;]" not in html and "['accepted']" not in html
    assert export_filters({"status": "all"}) == "all images"
    assert export_filters({"status": ["submitted", "in_review"], "predictions": True}) == "submitted and in review images · with model predictions"


def test_checkboxes_sit_beside_their_labels_on_the_export_and_import_pages(world):
    client = _browser(world, "manager")
    for path in ("datasets", "import"):
        html = client.get(f"/projects/{world.project.pk}/{path}/").content.decode()
        assert '<label class="check"><input type="checkbox"' in html


def test_the_upload_page_has_a_drop_zone(world):
    html = _browser(world, "manager").get(f"/projects/{world.project.pk}/upload/").content.decode()
    assert 'data-testid="upload-drop"' in html and "Drop images or zips here" in html


def test_tiles_name_images_by_their_file_name_with_the_folder_apart():
    assert basename("holiday/2024/beach/IMG_0001.jpg") == "IMG_0001.jpg"
    assert dirname("holiday/2024/beach/IMG_0001.jpg") == "holiday/2024/beach"
    assert basename("a.png") == "a.png" and dirname("a.png") == ""
