"""core.db.rows_delete_returning: one DELETE ... RETURNING, refused for rows a plain DELETE would mishandle."""
from __future__ import annotations

import pytest

from annotator.core.db import rows_delete_returning
from annotator.images.models import Image
from tests.factories import polygon_geometry, square

pytestmark = pytest.mark.django_db


def test_rows_come_back_converted_and_are_gone(world):  # type: ignore[no-untyped-def]
    from annotator.annotations.models import Annotation
    from annotator.annotations.services import annotations_replace
    from annotator.images.services import images_add
    from tests.factories import png_bytes

    data = png_bytes(64, 64)
    [image] = images_add(project=world.project, sources=[("a.png", lambda: data)]).created
    items = [{"label": world.labels[0].pk, "geometry": polygon_geometry(square(5 + 20 * i, 5, 10))} for i in range(3)]
    annotations_replace(image=image, user=world.users["manager"], base_version=image.version, items=items)
    stored = {a.uid: a.created_at for a in Annotation.objects.filter(image=image)}
    deleted = rows_delete_returning(Annotation.objects.filter(image=image), ("uid", "author", "created_at"))
    assert {uid: created for uid, _, created in deleted} == stored  # UUIDs and aware datetimes, as the ORM reads them
    assert {author for _, author, _ in deleted} == {world.users["manager"].pk}
    assert not Annotation.objects.filter(image=image).exists()


def test_rows_that_others_reference_are_refused():  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="referenced or observed"):
        rows_delete_returning(Image.objects.none(), ("id",))
