"""The Backups and Restore pages: who sees them, what they show (browser flows in tests/e2e/test_backups_browser.py)."""
from __future__ import annotations

from annotator.backups.services import BackupOptions, backup_create
from annotator.projects.services import project_archive
from tests.factories import make_images


def test_managers_see_the_backups_page_with_the_archives(world, client) -> None:
    make_images(world.project, 1)
    backup = backup_create(project=world.project, options=BackupOptions(), user=world.users["manager"])
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/backups/")
    assert page.status_code == 200
    html = page.content.decode()
    assert backup.sha256[:16] in html and f"/api/backups/{backup.pk}/download/" in html
    assert 'data-testid="delete-confirm"' in html and 'data-testid="archive-button"' in html
    assert 'data-testid="duplicate-button"' not in html  # duplicating creates a project: administrators only
    assert 'style="' not in html and "<script>" not in html  # the Content-Security-Policy allows neither
    client.force_login(world.users["annotator"])
    assert client.get(f"/projects/{world.project.pk}/backups/").status_code == 403


def test_an_archived_project_says_so_on_every_page_and_refuses_page_writes(world, client) -> None:
    project_archive(project=world.project, user=world.users["manager"])
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/")
    assert b'data-testid="archived-banner"' in page.content
    response = client.post(f"/projects/{world.project.pk}/labels/", {"name": "bird", "color": "#00ff00"})
    assert response.status_code == 403 and b"archived" in response.content
    assert world.project.labels.filter(name="bird").count() == 0
    assert b'data-testid="unarchive-button"' in client.get(f"/projects/{world.project.pk}/backups/").content
    assert b'data-testid="export-button"' in client.get(f"/projects/{world.project.pk}/datasets/").content  # still exportable


def test_only_administrators_open_the_restore_page(world, client) -> None:
    client.force_login(world.users["manager"])
    assert client.get("/restore/").status_code == 403
    client.force_login(world.users["admin"])
    page = client.get("/restore/")
    assert page.status_code == 200 and b'data-testid="restore-file"' in page.content
    assert b'data-testid="restore-link"' in client.get("/").content
