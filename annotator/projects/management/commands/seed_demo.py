"""`manage.py seed_demo`: a demo project with labels, sample images and users for each role."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from annotator.annotations.models import RevisionAction, Source
from annotator.annotations.services import annotations_replace
from annotator.images import workflow
from annotator.images.services import images_add, sources_from_folder
from annotator.projects.models import Membership, Project, Role
from annotator.projects.services import project_create
from ml.geometry import from_coco_segmentation

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
PROJECT_NAME = "Fruits and nuts (demo)"
GUIDELINES = """\
# Annotating fruits and nuts

* Outline **every** date, fig and hazelnut, one object per fruit, even where they touch.
* Follow the visible edge of the fruit; leave out shadows.
* A fruit cut by the image border is still annotated up to the border.
* Use **1** for date, **2** for fig, **3** for hazelnut.
"""
USERS = [("admin", True, None), ("manager", False, Role.MANAGER), ("annotator", False, Role.ANNOTATOR),
         ("annotator2", False, Role.ANNOTATOR), ("reviewer", False, Role.REVIEWER)]


class Command(BaseCommand):
    help = "Create the demo project, its images and users admin / manager / annotator / annotator2 / reviewer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="demo-pass-2024", help="Password for every demo user")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"]
        with transaction.atomic():
            users = {name: self._user(name, password, superuser) for name, superuser, _ in USERS}
            project = Project.objects.filter(name=PROJECT_NAME).first()
            if project is None:
                project = project_create(
                    name=PROJECT_NAME,
                    creator=users["admin"],
                    description="Six photos of dates, figs and hazelnuts; two come with accepted outlines.",
                    guidelines=GUIDELINES,
                    labels=[{"name": "date", "color": "#e6194b"}, {"name": "fig", "color": "#4363d8"},
                            {"name": "hazelnut", "color": "#f58231"}],
                )
                self._images(project, users["admin"])
            for name, _, role in USERS:
                if role is not None:
                    Membership.objects.update_or_create(project=project, user=users[name], defaults={"role": role})
        self.stdout.write(self.style.SUCCESS(f"Demo project: {project.name} ({project.images.count()} images)"))
        self.stdout.write("Demo logins (username / password):")
        for name, superuser, role in USERS:
            self.stdout.write(f"  {name:<11} / {password}   ({'admin' if superuser else role})")

    def _user(self, name: str, password: str, superuser: bool):  # type: ignore[no-untyped-def]
        User = get_user_model()
        user = User.objects.filter(username=name).first()
        if user is None:
            user = User(username=name, is_superuser=superuser, is_staff=superuser)
        user.set_password(password)
        user.save()
        return user

    def _images(self, project: Project, admin) -> None:  # type: ignore[no-untyped-def]
        images_add(project=project, sources=sources_from_folder(DEMO_DIR))
        coco = json.loads((DEMO_DIR / "annotations.json").read_text())
        labels = {label.name: label.pk for label in project.labels.all()}
        categories = {c["id"]: labels[c["name"]] for c in coco["categories"]}
        by_name = {image.original_name: image for image in project.images.all()}
        # The first two images come with accepted outlines: training data and a review example.
        for entry in coco["images"][:2]:
            image = by_name[entry["file_name"]]
            items = [
                {
                    "label": categories[ann["category_id"]],
                    "geometry": from_coco_segmentation(ann["segmentation"], width=image.width, height=image.height),
                    "source": Source.IMPORT,
                    "z_order": index,
                }
                for index, ann in enumerate(a for a in coco["annotations"] if a["image_id"] == entry["id"])
            ]
            image = annotations_replace(image=image, user=admin, base_version=0, items=items, action=RevisionAction.IMPORT).image
            image.save(update_fields=workflow.apply(image, workflow.Action.IMPORT_AS_ACCEPTED, admin))
