"""The site header at the sizes people use: one line, nothing scrolls sideways, every project link
reachable (those that do not fit are under "More"); and the Datasets page offers every export
format, LabelMe included, whose zip is what LabelMe reads.

Screenshots at 1024 x 700 and 1400 x 900 are written to $ANNOTATOR_SCREENSHOT_DIR when it is set.
"""
from __future__ import annotations

import html as html_lib
import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from annotator.images.models import ImageStatus
from tests.e2e.pages import LoginPage
from tests.factories import polygon_geometry, square

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("ANNOTATOR_SCREENSHOT_DIR")
SIZES = {"1024": {"width": 1024, "height": 700}, "1400": {"width": 1400, "height": 900}}
#: Links a manager finds in a project's menu, in this order (other pages may add theirs).
PROJECT_LINKS = ["Dashboard", "Images", "Labels", "Members", "Models", "Datasets", "Import", "Upload", "Settings", "Backups"]
LONG_NAME = "Street scenes Lyon 2024: pedestrians, cyclists and scooters at crossings (second pass)"


def _pages(project_id: int, image_id: int) -> dict[str, str]:
    base = f"/projects/{project_id}"
    return {
        "projects": "/", "account": "/account/", "dashboard": f"{base}/", "images": f"{base}/images/",
        "labels": f"{base}/labels/", "members": f"{base}/members/", "models": f"{base}/models/",
        "datasets": f"{base}/datasets/", "import": f"{base}/import/", "upload": f"{base}/upload/",
        "settings": f"{base}/edit/", "backups": f"{base}/backups/", "editor": f"/images/{image_id}/edit/",
    }


def _header(page: Page) -> dict:
    """Where the header's parts are and which project links sit on the line or under "More"."""
    return page.evaluate("""() => {
        const bar = document.querySelector(".topbar"), nav = bar.querySelector(".projnav"), more = bar.querySelector(".nav-more");
        const visible = [...bar.children].filter((el) => !el.hidden && el.getClientRects().length);
        return {
            scrolls: document.documentElement.scrollWidth > window.innerWidth,
            height: bar.getBoundingClientRect().height,
            right: Math.max(...visible.map((el) => el.getBoundingClientRect().right)),
            navClipped: nav ? nav.scrollWidth > nav.clientWidth : false,
            // Cards whose content spills out sideways (a table wider than its card).
            spilling: [...document.querySelectorAll(".card")].filter((c) => c.scrollWidth > c.clientWidth + 1)
                .map((c) => c.querySelector("h2, h1")?.textContent.trim() || c.className),
            onLine: nav ? [...nav.querySelectorAll("a")].map((a) => a.textContent.trim()) : [],
            inMore: [...bar.querySelectorAll(".nav-more-menu a")].map((a) => a.textContent.trim()),
            moreShown: !!more && !more.hidden,
        };
    }""")


def _served_links(page: Page) -> list[str]:
    """The project menu's links as the server sent them (before nav.js moved any)."""
    html = page.request.get(page.url).text()
    menu = re.search(r'<nav class="projnav"[^>]*>(.*?)</nav>', html, re.S)
    return [html_lib.unescape(text).strip() for text in re.findall(r"<a [^>]*>([^<]+)</a>", menu.group(1))] if menu else []


def _in_order(wanted: list[str], links: list[str]) -> bool:
    return [link for link in links if link in wanted] == wanted


@pytest.fixture
def manager_project(world, image):  # type: ignore[no-untyped-def]
    world.project.name = LONG_NAME
    world.project.save()
    return world


def test_the_header_keeps_to_one_line_and_reaches_every_link_on_every_page(page, manager_project, image) -> None:
    LoginPage(page).login("manager")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for name, path in _pages(manager_project.project.pk, image.pk).items():
            page.goto(path)
            header = _header(page)
            where = f"{name} at {size}"
            assert not header["scrolls"], f"{where}: the page scrolls sideways"
            assert header["height"] <= 48, f"{where}: the header takes {header['height']} px (more than one line)"
            assert header["right"] <= viewport["width"] + 0.5, f"{where}: the header runs past the window"
            assert not header["navClipped"], f"{where}: a project link is cut off"
            assert not header["spilling"], f"{where}: content wider than its card: {header['spilling']}"
            if name not in ("projects", "account"):
                served = _served_links(page)
                assert _in_order(PROJECT_LINKS, served), (where, served)
                assert header["onLine"] + header["inMore"] == served, where  # every link, on the line or under More
                assert header["moreShown"] == bool(header["inMore"]), where
            if SHOTS and name in ("dashboard", "images", "datasets", "editor"):
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(SHOTS) / f"header-{name}-{size}.png"))


def test_an_administrators_header_with_people_fits_too(page, manager_project) -> None:
    LoginPage(page).login("admin")
    page.set_viewport_size(SIZES["1024"])
    for path in ("/people/", "/restore/", f"/projects/{manager_project.project.pk}/", f"/projects/{manager_project.project.pk}/backups/"):
        page.goto(path)
        header = _header(page)
        assert not header["scrolls"] and header["height"] <= 48 and header["right"] <= 1024.5, (path, header)
        assert not header["navClipped"] and not header["spilling"], (path, header)
        expect(page.get_by_test_id("nav-people")).to_be_in_viewport()
        if "/projects/" in path:
            assert header["onLine"] + header["inMore"] == _served_links(page), (path, header)


def test_links_that_do_not_fit_are_under_more_and_come_back_when_there_is_room(page, manager_project) -> None:
    project = manager_project.project
    LoginPage(page).login("manager")
    page.set_viewport_size(SIZES["1024"])
    page.goto(f"/projects/{project.pk}/")
    header = _header(page)
    assert header["inMore"] and header["onLine"][0] == "Dashboard", header  # the last links give way first
    more = page.get_by_test_id("nav-more")
    menu = page.get_by_test_id("nav-more-menu")
    expect(menu).to_be_hidden()
    more.locator("summary").click()
    expect(menu).to_be_visible()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1024, box
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "header-more-open-1024.png"))
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()

    more.locator("summary").click()
    menu.get_by_role("link", name="Backups").click()
    expect(page).to_have_url(f"{page.url.split('/projects/')[0]}/projects/{project.pk}/backups/")
    # The page you are on is marked, also when its link is under "More".
    expect(page.get_by_test_id("nav-more")).to_have_class("nav-more current")
    expect(page.locator('.nav-more-menu a[aria-current="page"]')).to_have_text("Backups")

    page.set_viewport_size({"width": 1900, "height": 900})
    expect(page.get_by_test_id("nav-more")).to_be_hidden()
    assert _header(page)["onLine"] == _served_links(page)
    expect(page.locator('.projnav a[aria-current="page"]')).to_have_text("Backups")


def test_the_datasets_page_offers_labelme_and_its_zip_is_labelme(page, world, image, jobs_run_here) -> None:
    label = world.labels[0]
    response = world.client("annotator").put(f"/api/images/{image.pk}/annotations/", {"version": image.version, "annotations": [
        {"label": label.pk, "geometry": polygon_geometry(square(20, 20, 40)), "attributes": {"occluded": True, "colour": "red"}},
    ]}, format="json")
    assert response.status_code == 200, response.content
    image.refresh_from_db()
    image.status = ImageStatus.ACCEPTED
    image.save()

    LoginPage(page).login("manager")
    page.goto(f"/projects/{world.project.pk}/datasets/")
    formats = page.get_by_test_id("export-format")
    expect(formats.locator("option")).to_have_text(["COCO instances JSON", "Pascal VOC", "LabelMe JSON"])
    formats.select_option("labelme")
    page.get_by_label("Include the image files").check()
    page.get_by_test_id("export-button").click()
    status = page.get_by_test_id("export-status")
    expect(status).to_contain_text("Export finished", timeout=60_000)
    expect(status).to_contain_text("1 image, 1 object")
    expect(page.get_by_test_id("dataset-version").first).to_contain_text("LabelMe JSON")

    download = page.request.get(status.get_by_role("link", name="Download").get_attribute("href"))
    assert download.ok
    with zipfile.ZipFile(io.BytesIO(download.body())) as archive:
        assert sorted(archive.namelist()) == ["labelme/img0.json", "labelme/img0.png", "manifest.json"]
        document = json.loads(archive.read("labelme/img0.json"))
    (shape,) = document["shapes"]
    assert (document["imagePath"], document["imageWidth"], document["imageHeight"]) == ("img0.png", 200, 100)
    assert (shape["label"], shape["shape_type"], shape["flags"], shape["colour"]) == ("cat", "polygon", {"occluded": True}, "red")
    assert sorted(map(tuple, shape["points"])) == sorted(map(tuple, square(20, 20, 40)))
