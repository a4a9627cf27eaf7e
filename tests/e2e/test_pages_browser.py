"""A manager and an annotator use the server-rendered pages in a real browser."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotator.images.models import Image
from tests.e2e.pages import LoginPage, UploadPage
from tests.factories import png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_uploads_images_and_sees_them_in_the_list(page, world, tmp_path):
    files = []
    for index in range(3):
        path = tmp_path / f"photo{index}.png"
        path.write_bytes(png_bytes(120, 80, color=(index * 60, 90, 30)))
        files.append(str(path))
    LoginPage(page).login("manager")

    upload = UploadPage(page).open(world.project.pk)
    upload.upload(*files)

    expect(upload.status).to_contain_text("3 image(s) added")
    assert Image.objects.filter(project=world.project).count() == 3
    page.goto(f"/projects/{world.project.pk}/images/")
    expect(page.get_by_test_id("image-tile")).to_have_count(3)


def test_a_corrupt_upload_shows_the_reason_and_adds_nothing(page, world, tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes())
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    LoginPage(page).login("manager")

    upload = UploadPage(page).open(world.project.pk)
    upload.upload(str(good), str(bad))

    expect(upload.status).to_contain_text("broken.jpg")
    expect(upload.status).to_contain_text("nothing was added")
    assert Image.objects.filter(project=world.project).count() == 0


def test_dashboard_shows_counts_by_status(page, world, image):
    LoginPage(page).login("annotator")
    page.goto(f"/projects/{world.project.pk}/")
    expect(page.get_by_test_id("count-total")).to_have_text("1")
    expect(page.get_by_test_id("count-new")).to_have_text("1")


def test_outsider_cannot_open_a_project(page, world):
    LoginPage(page).login("outsider")
    response = page.goto(f"/projects/{world.project.pk}/")
    assert response.status == 404
