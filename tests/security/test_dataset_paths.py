"""Paths named inside a dataset: every file name a dataset gives stays inside the dataset.

COCO ``file_name``, VOC ``<filename>``, LabelMe ``imagePath``, the files of an ``--images``
folder and zip members go through one resolver (``ml.formats.paths``). A name that leads out —
``../``, an absolute path, backslashes, ``%2e%2e``, a NUL byte, a symbolic link — is a 400 naming
the entry, the same whether something exists out there or not, and it never shows a server path.
"""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from annotator.core.errors import DomainError
from annotator.datasets.services import ImportOptions, dataset_import
from annotator.images.models import Image
from annotator.images.services import images_add
from annotator.projects.models import Project
from ml.formats import FormatError, safe_extract
from tests.factories import ProjectFactory, png_bytes

SIZE = 10  # every image here is 10x10, so a file read from elsewhere would match its annotations
DEPTH = 40  # enough "../" to reach the filesystem root from any extraction folder


def _xml(filename: str) -> bytes:
    escaped = filename.replace("&", "&amp;").replace("<", "&lt;")
    return (
        f"<annotation><filename>{escaped}</filename><size><width>{SIZE}</width><height>{SIZE}</height></size>"
        "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
        "</annotation>"
    ).encode()


def _coco(file_name: str) -> bytes:
    return json.dumps({
        "images": [{"id": 1, "file_name": file_name, "width": SIZE, "height": SIZE}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 6, 1, 6, 6, 1, 6]],
                         "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "cat"}],
    }).encode()


def _labelme(image_path: str, image_data: str | None = None) -> bytes:
    return json.dumps({
        "version": "5.4.1", "flags": {},
        "shapes": [{"label": "cat", "points": [[1, 1], [6, 1], [6, 6], [1, 6]], "shape_type": "polygon", "group_id": None}],
        "imagePath": image_path, "imageData": image_data, "imageHeight": SIZE, "imageWidth": SIZE,
    }).encode()


# One dataset per format whose single image is named `name`; a genuine image sits where a
# fallback would look for it (VOC: JPEGImages/v1.jpg, COCO: images/a.png, LabelMe: a.png).
LAYOUTS: dict[str, tuple[str, Callable[[str], dict[str, bytes]]]] = {
    "voc": ("<filename>", lambda name: {"Annotations/v1.xml": _xml(name), "JPEGImages/v1.jpg": png_bytes(SIZE, SIZE, fmt="JPEG")}),
    "coco": ("file_name", lambda name: {"annotations.json": _coco(name), "images/a.png": png_bytes(SIZE, SIZE)}),
    "labelme": ("imagePath", lambda name: {"a.json": _labelme(name), "a.png": png_bytes(SIZE, SIZE)}),
}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _folder(path: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def _import(project: Project, fmt: str, path: Path, **options: Any) -> dict[str, Any]:
    return dataset_import(project=project, fmt=fmt, path=path, options=ImportOptions(**options), user=None)


def _refusal(project: Project, fmt: str, path: Path, *, name: str | None = None, **options: Any) -> str:
    """The detail of the import's refusal; nothing may have been created."""
    with pytest.raises(DomainError) as error:
        _import(project, fmt, path, **options)
    assert not Image.objects.filter(project=project).exists()
    detail = error.value.detail
    # No server path in the message (the name the dataset gave aside): not the data dir, not the
    # folder the zip was unpacked in, not the temporary folders.
    shown = detail.replace(repr(name), "NAME") if name is not None else detail
    for server_path in (settings.DATA_DIR, settings.ANNOTATOR_TMP_DIR, "/tmp/", "extracted"):
        assert str(server_path) not in shown, detail
    return detail


@pytest.fixture
def project(db) -> Project:
    return ProjectFactory(name="Attacker's project")


@pytest.fixture
def secret(db, tmp_path: Path) -> Path:
    """Another project's private image, stored the way the server stores every image."""
    victim = ProjectFactory(name="Victim")
    images_add(project=victim, sources=[("private.png", lambda: png_bytes(SIZE, SIZE, color=(250, 1, 2)))])
    return Path(settings.MEDIA_ROOT) / Image.objects.get(project=victim).file.name


def _escaping_names(target: Path) -> dict[str, str]:
    absolute = str(target)
    relative = absolute.lstrip("/")
    return {
        "dot-dot": "../" * DEPTH + relative,
        "absolute": absolute,
        "backslashes": "..\\" * DEPTH + relative.replace("/", "\\"),
        "url-encoded-dots": "%2e%2e/" * DEPTH + relative,
        "url-encoded-slashes": "..%2f" * DEPTH + relative,
        "windows-drive": "C:\\Windows\\win.ini",
        "file-url": "file://" + absolute,
    }


ESCAPES = list(_escaping_names(Path("/x")))


@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("how", ESCAPES)
def test_a_name_leading_out_of_the_dataset_is_refused_the_same_whether_its_target_exists(
    project: Project, secret: Path, tmp_path: Path, fmt: str, how: str
) -> None:
    entry, layout = LAYOUTS[fmt]
    details = []
    for target in (secret, secret.with_name("nothing-here.png")):
        name = _escaping_names(target)[how]
        archive = _zip(tmp_path / f"{fmt}-{target.name}.zip", layout(name))
        detail = _refusal(project, fmt, archive, name=name)
        assert f"{entry} {name!r} points outside the dataset folder" in detail
        details.append(detail.replace(repr(name), "NAME"))
    assert details[0] == details[1]  # no existence oracle


def test_voc_filename_cannot_make_another_projects_image_ours(project: Project, secret: Path, tmp_path: Path) -> None:
    """The reported attack: <filename> climbing into media/projects/<other>/images/…"""
    before = secret.read_bytes()
    name = "../" * DEPTH + str(secret).lstrip("/")
    archive = _zip(tmp_path / "v.zip", LAYOUTS["voc"][1](name))
    detail = _refusal(project, "voc", archive, name=name)
    assert detail.startswith("Annotations/v1.xml: <filename> ")
    assert secret.read_bytes() == before


def test_voc_absolute_filename_is_a_format_error_not_a_crash(project: Project, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "v.zip", LAYOUTS["voc"][1]("/etc/passwd"))
    detail = _refusal(project, "voc", archive)
    assert detail == "Annotations/v1.xml: <filename> '/etc/passwd' points outside the dataset folder: absolute path is not allowed"


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_a_nul_byte_in_a_name_is_refused(project: Project, tmp_path: Path, fmt: str) -> None:
    entry, layout = LAYOUTS[fmt]
    for name in ("a.png\x00.txt", "a.png%00"):
        detail = _refusal(project, fmt, _zip(tmp_path / "n.zip", layout(name)))
        assert f"{entry} {name!r} is refused: NUL byte in name" in detail


def test_a_nul_byte_in_a_voc_filename_is_refused(project: Project, tmp_path: Path) -> None:
    # XML cannot carry a NUL character at all; the URL-encoded one is caught by the resolver.
    detail = _refusal(project, "voc", _zip(tmp_path / "n.zip", LAYOUTS["voc"][1]("v1.jpg%00")))
    assert "<filename> 'v1.jpg%00' is refused: NUL byte in name" in detail
    raw_xml = _xml("v1.jpg").replace(b"v1.jpg", b"v1&#0;.jpg")
    raw = _zip(tmp_path / "raw.zip", {**LAYOUTS["voc"][1]("x"), "Annotations/v1.xml": raw_xml})
    assert "Annotations/v1.xml: invalid XML" in _refusal(project, "voc", raw)


# Symbolic links cannot come in a zip (the archive reader refuses them), but a dataset folder
# given to the import command can hold them.
LINKED = {"voc": "JPEGImages/v1.jpg", "coco": "images/a.png", "labelme": "a.png"}
INSIDE_NAME = {"voc": "v1.jpg", "coco": "a.png", "labelme": "a.png"}


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_a_symbolic_link_leading_out_of_a_dataset_folder_is_refused(
    project: Project, secret: Path, tmp_path: Path, fmt: str
) -> None:
    entry, layout = LAYOUTS[fmt]
    details = []
    for k, target in enumerate((secret, secret.with_name("nothing-here.png"))):
        folder = _folder(tmp_path / f"{fmt}{k}", layout(INSIDE_NAME[fmt]))
        link = folder / LINKED[fmt]
        link.unlink()
        link.symlink_to(target)
        detail = _refusal(project, fmt, folder)
        assert "points outside the dataset folder: a symbolic link in the path leads out of it" in detail
        assert str(target) not in detail
        details.append(detail)
    assert details[0] == details[1]


def test_a_linked_annotation_file_leading_out_is_refused(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(_coco("a.png"))
    folder = _folder(tmp_path / "ds", {"images/a.png": png_bytes(SIZE, SIZE)})
    (folder / "annotations.json").symlink_to(outside)
    assert "annotations.json: a symbolic link that points outside the dataset folder" in _refusal(project, "coco", folder)


def test_names_that_stay_inside_still_work(project: Project, tmp_path: Path) -> None:
    # LabelMe beside the images with "../", as labelme writes it for an annotations/ folder.
    folder = _folder(tmp_path / "lm", {"ann/a.json": _labelme("..\\images\\a.png"), "images/a.png": png_bytes(SIZE, SIZE)})
    assert _import(project, "labelme", folder)["created_count"] == 1
    # VOC: a <filename> that is not there (but inside) still falls back to <id>.jpg.
    other = ProjectFactory(name="Second")
    archive = _zip(tmp_path / "v.zip", LAYOUTS["voc"][1]("renamed-since.jpg"))
    assert _import(other, "voc", archive)["created_count"] == 1


def test_labelme_embedded_pixels_are_used_and_the_escaping_path_reported(project: Project, tmp_path: Path) -> None:
    import base64

    data = base64.b64encode(png_bytes(SIZE, SIZE, color=(9, 9, 9))).decode()
    archive = _zip(tmp_path / "lm.zip", {"a.json": _labelme("C:\\Users\\me\\a.png", image_data=data)})
    result = _import(project, "labelme", archive)
    assert result["created_count"] == 1
    assert any("imagePath 'C:\\\\Users\\\\me\\\\a.png' points outside the dataset folder" in w for w in result["warnings"])
    assert Image.objects.get(project=project).original_name == "a.png"


def test_images_folder_option_confines_the_names(project: Project, secret: Path, tmp_path: Path) -> None:
    images = _folder(tmp_path / "imgs", {"a.png": png_bytes(SIZE, SIZE)})
    (tmp_path / "ann").mkdir()
    escape = tmp_path / "ann" / "annotations.json"
    name = "../" * DEPTH + str(secret).lstrip("/")
    escape.write_bytes(_coco(name))
    detail = _refusal(project, "coco", escape, name=name, images_dir=images)
    assert "points outside the dataset folder" in detail
    (images / "b.png").symlink_to(secret)
    linked = tmp_path / "ann" / "linked.json"
    linked.write_bytes(_coco("b.png"))
    assert "a symbolic link in the path leads out of it" in _refusal(project, "coco", linked, images_dir=images)


def test_import_command_images_option_refuses_a_name_leading_out(transactional_db, tmp_path: Path) -> None:
    images = _folder(tmp_path / "imgs", {"a.png": png_bytes(SIZE, SIZE)})
    annotations = tmp_path / "annotations.json"
    annotations.write_bytes(_coco("../../etc/hostname"))
    with pytest.raises(CommandError, match="points outside the dataset folder"):
        call_command("import_dataset", "--project", "P", "--format", "coco", "--images", str(images),
                     str(annotations), stdout=io.StringIO())
    assert not Image.objects.exists()


MEMBER_TRICKS = {
    "dot-dot": "../evil.png",
    "nested-dot-dot": "a/b/../../../evil.png",
    "absolute": "/tmp/evil.png",
    "backslashes": "..\\..\\evil.png",
    "windows-drive": "C:\\evil.png",
    "url-encoded-dots": "%2e%2e/%2e%2e/evil.png",
}


@pytest.mark.parametrize("how", MEMBER_TRICKS)
def test_a_zip_member_leading_out_is_refused_before_anything_is_written(tmp_path: Path, how: str) -> None:
    name = MEMBER_TRICKS[how]
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("fine.png", png_bytes(SIZE, SIZE))
        out.writestr(zipfile.ZipInfo(name), png_bytes(SIZE, SIZE))
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(FormatError) as error:
        safe_extract(archive, dest)
    assert error.value.file == "upload.zip"
    assert error.value.problem.startswith(f"member {name!r} points outside the archive")
    assert not dest.exists() or not any(dest.iterdir())
    assert not list(tmp_path.rglob("evil.png"))
