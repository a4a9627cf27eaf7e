"""A real worker learns a project's shape from its accepted masks on the default queue, without loading torch."""
from __future__ import annotations

from pathlib import Path

import pytest

from annotator.annotations.services import annotations_replace
from annotator.images.models import Image, ImageStatus
from annotator.images.services import images_add
from annotator.jobs.models import JobKind, JobState
from annotator.learning.models import ProjectShape
from annotator.learning.services import shape_learn_start
from annotator.learning.services.assists import project_shape_path
from ml.geometry import mask_to_rle
from ml.synthetic import generate_dataset
from tests.annotator.test_learning import png
from tests.factories import LabelFactory, ProjectFactory
from tests.integration.conftest import wait_for
from tests.integration.test_footprint import _processes

pytestmark = pytest.mark.worker


def test_a_worker_learns_the_shape_of_the_accepted_masks_without_loading_torch(worker):
    project = ProjectFactory()
    labels = {name: LabelFactory(project=project, name=name, order=i) for i, name in enumerate(["disc", "rectangle"])}
    samples = generate_dataset(4, seed=2, size=96, classes=list(labels), objects=(1, 3))
    images = images_add(project=project, sources=[(f"s{i}.png", lambda d=png(s.image): d) for i, s in enumerate(samples)]).created
    for image, sample in zip(images, samples):
        items = [{"label": labels[name].pk, "geometry": {"type": "mask", "rle": mask_to_rle(mask)}} for name, mask in sample.objects]
        annotations_replace(image=image, user=None, base_version=0, items=items)
    Image.objects.filter(project=project).update(status=ImageStatus.ACCEPTED)

    job = shape_learn_start(project=project, user=None)
    job = wait_for(job, lambda j: j.is_finished, 120, worker)

    assert job.kind == JobKind.LEARN_SHAPE and job.state == JobState.SUCCEEDED, job.error
    learned = ProjectShape.objects.get(project=project)
    assert learned.images == 4 and learned.object_count == sum(len(s.objects) for s in samples)
    assert project_shape_path(project.pk).is_file()
    loaded = [pid for pid in _processes(worker.process.pid) if "libtorch" in Path(f"/proc/{pid}/maps").read_text()]
    assert loaded == []
