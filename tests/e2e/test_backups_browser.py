"""Backups in a real browser: back up, duplicate, restore an upload, archive (every change refused), delete."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.backups.models import ProjectBackup
from annotator.backups.services import BackupOptions, backup_write
from annotator.images.models import Image
from annotator.projects.models import Project
from tests.backup_helpers import assert_same_content, project_content
from tests.e2e.pages import BackupsPage, LoginPage
from tests.factories import make_images, polygon_geometry, square

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def annotated(world):  # type: ignore[no-untyped-def]
    image = make_images(world.project, 2, width=80, height=60)[0]
    annotations_replace(image=image, user=world.users["annotator"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(5, 5, 20))}])
    return Image.objects.get(pk=image.pk)


def test_admin_backs_up_and_duplicates_a_project(page, world, annotated, jobs_run_here) -> None:
    LoginPage(page).login("admin")
    backups = BackupsPage(page).open(world.project.pk)
    backups.back_up()
    expect(page.get_by_test_id("backup-download")).to_have_count(1)
    assert ProjectBackup.objects.filter(project=world.project).count() == 1

    backups.duplicate("Twin")
    page.get_by_test_id("new-project-link").click()
    expect(page.get_by_role("link", name="Twin")).to_be_visible()
    assert_same_content(project_content(world.project), project_content(Project.objects.get(name="Twin")))


def test_admin_restores_an_uploaded_archive(page, world, annotated, jobs_run_here, tmp_path: Path) -> None:
    archive = tmp_path / "moved.zip"
    backup_write(project=world.project, out=archive, options=BackupOptions())
    LoginPage(page).login("admin")
    BackupsPage(page).restore_upload(str(archive), "Moved here")
    restored = Project.objects.get(name="Moved here")
    assert Annotation.objects.filter(image__project=restored).count() == 1
    page.get_by_test_id("new-project-link").click()
    expect(page).to_have_url(f"{page.url.split('/projects/')[0]}/projects/{restored.pk}/")


def test_manager_archives_and_nothing_can_be_changed(page, world, annotated, jobs_run_here) -> None:
    LoginPage(page).login("manager")
    BackupsPage(page).open(world.project.pk).archive()
    expect(page.get_by_test_id("archived-banner")).to_be_visible()
    # The API the editor uses answers with the reason; the pages' forms too.
    save = page.request.put(f"/api/images/{annotated.pk}/annotations/", data={"version": annotated.version, "annotations": []},
                            headers={"X-CSRFToken": _csrf(page)})
    assert save.status == 403 and "archived" in save.json()["detail"]
    response = page.goto(f"/projects/{world.project.pk}/upload/")
    assert response is not None and response.status == 403
    # Still backed up.
    BackupsPage(page).open(world.project.pk).back_up()
    page.get_by_test_id("unarchive-button").click()
    expect(page.get_by_test_id("archive-button")).to_be_visible()
    expect(page.get_by_test_id("archived-banner")).to_have_count(0)


def test_manager_deletes_a_project_after_typing_its_name(page, world, annotated, jobs_run_here) -> None:
    names = [n for pair in Image.objects.filter(project=world.project).values_list("file", "thumbnail") for n in pair]
    LoginPage(page).login("manager")
    backups = BackupsPage(page).open(world.project.pk)
    backups.delete(world.project.name)
    expect(page).to_have_url(re.compile(r"://[^/]+/$"), timeout=60_000)  # back on the project list
    expect(page.get_by_role("link", name=world.project.name)).to_have_count(0)
    assert not Project.objects.filter(pk=world.project.pk).exists()
    assert not Image.objects.filter(project_id=world.project.pk).exists()
    assert not any(default_storage.exists(name) for name in names)


def _csrf(page) -> str:  # type: ignore[no-untyped-def]
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
