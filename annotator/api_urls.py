"""URL map of the REST API (/api/...)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from annotator.accounts import api as accounts
from annotator.annotations import api as annotations
from annotator.backups import api as backups
from annotator.consensus import api as consensus
from annotator.core.docs import RedocView, SwaggerView
from annotator.datasets import api as datasets
from annotator.groundtruth import api as groundtruth
from annotator.images import api as images
from annotator.jobs import api as jobs
from annotator.learning import api as learning
from annotator.projects import api as projects
from annotator.quality import api as quality
from annotator.review import api as review

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", RedocView.as_view(url_name="schema"), name="api-redoc"),
    path("projects/", projects.ProjectListApi.as_view()),
    path("projects/<int:pk>/", projects.ProjectDetailApi.as_view()),
    path("projects/<int:pk>/stats/", projects.ProjectStatsApi.as_view()),
    path("projects/<int:pk>/labels/", projects.LabelListApi.as_view()),
    path("projects/<int:pk>/members/", projects.MemberListApi.as_view()),
    path("projects/<int:pk>/invitations/", accounts.InvitationApi.as_view()),
    path("users/", accounts.UserListApi.as_view()),
    path("me/", accounts.MeApi.as_view()),
    path("me/password/", accounts.PasswordApi.as_view()),
    path("projects/<int:pk>/images/", images.ImageListApi.as_view()),
    path("projects/<int:pk>/queue/next/", images.QueueNextApi.as_view()),
    path("labels/<int:pk>/", projects.LabelDetailApi.as_view()),
    path("members/<int:pk>/", projects.MemberDetailApi.as_view()),
    path("images/<int:pk>/", images.ImageDetailApi.as_view()),
    path("images/<int:pk>/file/", images.ImageFileApi.as_view()),
    path("images/<int:pk>/thumbnail/", images.ImageFileApi.as_view(thumbnail=True)),
    path("images/<int:pk>/submit/", images.SubmitApi.as_view()),
    path("images/<int:pk>/release/", images.ReleaseApi.as_view()),
    path("images/<int:pk>/access/", images.ImageAccessApi.as_view()),
    path("images/<int:pk>/neighbours/", images.ImageNeighboursApi.as_view()),
    path("images/<int:pk>/annotations/", annotations.AnnotationSetApi.as_view()),
    path("images/<int:pk>/revisions/", annotations.RevisionListApi.as_view()),
    path("images/<int:pk>/revisions/<int:version>/", annotations.RevisionDetailApi.as_view()),
    path("images/<int:pk>/revisions/<int:version>/restore/", annotations.RevisionRestoreApi.as_view()),
    path("images/<int:pk>/predictions/", annotations.PredictionListApi.as_view()),
    path("geometry/convert/", annotations.GeometryConvertApi.as_view()),
    path("jobs/", jobs.JobListApi.as_view()),
    path("jobs/<int:pk>/", jobs.JobDetailApi.as_view()),
    path("jobs/<int:pk>/cancel/", jobs.JobCancelApi.as_view()),
    path("jobs/<int:pk>/result/", jobs.JobResultApi.as_view()),
    # Review (annotator.review)
    path("projects/<int:pk>/review/next/", review.ReviewNextApi.as_view()),
    path("projects/<int:pk>/review-stats/", review.ReviewStatsApi.as_view()),
    path("images/<int:pk>/review/", review.ReviewApi.as_view()),
    path("images/<int:pk>/review/take/", review.ReviewTakeApi.as_view()),
    path("images/<int:pk>/review/release/", review.ReviewReleaseApi.as_view()),
    path("images/<int:pk>/comments/", review.CommentListApi.as_view()),
    path("comments/<int:pk>/", review.CommentDetailApi.as_view()),
    # Datasets (annotator.datasets)
    path("projects/<int:pk>/imports/", datasets.ImportListApi.as_view()),
    path("projects/<int:pk>/exports/", datasets.ExportListApi.as_view()),
    path("datasets/<int:pk>/", datasets.DatasetVersionApi.as_view()),
    path("datasets/<int:pk>/download/", datasets.DatasetDownloadApi.as_view()),
    # Model-assisted annotation (annotator.learning)
    path("assist/box-to-mask/", learning.BoxToMaskApi.as_view()),
    path("assist/scissors/", learning.ScissorsApi.as_view()),
    path("assist/sam/", learning.SamApi.as_view()),
    path("projects/<int:pk>/models/", learning.ModelListApi.as_view()),
    path("projects/<int:pk>/box-engines/", learning.BoxEnginesApi.as_view()),
    path("projects/<int:pk>/preannotate/", learning.PreannotateApi.as_view()),
    path("projects/<int:pk>/train/", learning.TrainApi.as_view()),
    path("projects/<int:pk>/learn-shape/", learning.LearnShapeApi.as_view()),
    path("models/<int:pk>/", learning.ModelDetailApi.as_view()),
    path("models/<int:pk>/activate/", learning.ModelActivateApi.as_view()),
    path("models/<int:pk>/evaluate/", learning.EvaluateApi.as_view()),
    # Backups, restores, duplicates; archiving and deleting a project (annotator.backups, annotator.projects)
    path("projects/<int:pk>/archive/", projects.ProjectArchiveApi.as_view()),
    path("projects/<int:pk>/unarchive/", projects.ProjectUnarchiveApi.as_view()),
    path("projects/<int:pk>/backups/", backups.BackupListApi.as_view()),
    path("projects/<int:pk>/backup-schedule/", backups.BackupScheduleApi.as_view()),
    path("projects/<int:pk>/duplicate/", backups.DuplicateApi.as_view()),
    path("backups/<int:pk>/", backups.BackupDetailApi.as_view()),
    path("backups/<int:pk>/download/", backups.BackupDownloadApi.as_view()),
    path("backups/<int:pk>/restore/", backups.BackupRestoreApi.as_view()),
    path("restores/", backups.RestoreUploadApi.as_view()),
    # Quality control (annotator.quality)
    path("images/<int:pk>/time/", quality.TimeApi.as_view()),
    path("projects/<int:pk>/quality/time/", quality.TimeReportApi.as_view()),
    path("projects/<int:pk>/quality/", quality.QualityReportApi.as_view()),
    # Ground truth (annotator.groundtruth)
    path("images/<int:pk>/ground-truth/", groundtruth.GroundTruthApi.as_view()),
    path("projects/<int:pk>/ground-truth/attempts/", groundtruth.AttemptListApi.as_view()),
    path("ground-truth/attempts/<int:pk>/", groundtruth.AttemptDetailApi.as_view()),
    path("projects/<int:pk>/quality/ground-truth/", groundtruth.GroundTruthReportApi.as_view()),
    # Consensus (annotator.consensus)
    path("images/<int:pk>/consensus/", consensus.ConsensusApi.as_view()),
]
