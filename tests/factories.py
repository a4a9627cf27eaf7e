"""factory_boy factories and small image/geometry builders shared by the tests."""
from __future__ import annotations

import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from annotator.images.services import images_add
from annotator.projects.models import Label, Membership, Project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pass-word-123")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    guidelines = "# Guidelines\nOutline every object."


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Label

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"label{n}")
    color = "#ff0000"
    order = factory.Sequence(lambda n: n)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = "annotator"


def former_member(project: Project, *, username: str, now: str | None) -> object:
    """A user who managed `project` and was then demoted to role `now`, or removed (`now=None`).

    The change goes through the membership services, as it does when a manager makes it.
    """
    from annotator.projects.services import membership_remove, membership_set

    user = UserFactory(username=username)
    membership = MembershipFactory(project=project, user=user, role="manager")
    if now is None:
        membership_remove(membership=membership)
    else:
        membership_set(project=project, username=username, role=now)
    return user


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def make_images(project: Project, count: int = 1, *, width: int = 64, height: int = 48) -> list:
    """Add `count` distinct solid-colour images to a project."""
    sources = []
    for index in range(count):
        data = png_bytes(width, height, color=(index % 256, (index // 256) % 256, 77))
        sources.append((f"img{index}.png", lambda data=data: data))
    return images_add(project=project, sources=sources).created


def square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size]]


def polygon_geometry(*rings: list[list[float]], holes: list[list[list[float]]] | None = None) -> dict:
    parts = [{"exterior": ring, "holes": []} for ring in rings]
    if holes:
        parts[0]["holes"] = holes
    return {"type": "polygons", "polygons": parts}
