"""Fixtures: named personas for one project, API clients logged in as each of them."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tests.browser import browser, csp_allowed, csp_violations, page  # noqa: F401 - fixtures
from tests.factories import LabelFactory, MembershipFactory, ProjectFactory, UserFactory, make_images
from tests.sam import tiny_sam, tiny_sam2, tiny_sam2_file, tiny_sam_file, tiny_variants  # noqa: F401 - fixtures


@dataclass
class World:
    """One project with a member of every role, an outsider, and an admin."""

    project: object
    labels: list
    users: dict

    def client(self, persona: str) -> APIClient:
        client = APIClient()
        if persona != "anonymous":
            client.force_authenticate(self.users[persona])
        return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Personas are created for every test; PBKDF2 at production strength costs ~0.3 s per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db) -> World:
    project = ProjectFactory()
    labels = [LabelFactory(project=project, name="cat", order=0), LabelFactory(project=project, name="dog", order=1)]
    users = {
        "admin": UserFactory(username="admin", is_superuser=True, is_staff=True),
        "manager": UserFactory(username="manager"),
        "annotator": UserFactory(username="annotator"),
        "annotator2": UserFactory(username="annotator2"),
        "reviewer": UserFactory(username="reviewer"),
        "outsider": UserFactory(username="outsider"),
    }
    for name in ("manager", "annotator", "annotator2", "reviewer"):
        MembershipFactory(project=project, user=users[name], role=name.rstrip("2"))
    # The outsider manages another project: being a manager elsewhere gives nothing here.
    MembershipFactory(project=ProjectFactory(), user=users["outsider"], role="manager")
    return World(project=project, labels=labels, users=users)


@pytest.fixture
def image(world):
    return make_images(world.project, 1, width=200, height=100)[0]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
