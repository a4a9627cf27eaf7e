"""URL map of the server-rendered pages."""
from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from annotator.accounts import views as account_views
from annotator.backups import views as backup_views
from annotator.learning import views as learning_views
from annotator.quality import views as quality_views

from . import dataset_views, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_list, name="project-list"),
    path("people/", account_views.people_page, name="people"),
    path("account/", account_views.account_page, name="account"),
    path("account/set-password/<uidb64>/<token>/", account_views.SetPasswordView.as_view(), name="set-password"),
    path("projects/new/", views.project_create, name="project-create"),
    path("projects/<int:pk>/", views.project_dashboard, name="project-dashboard"),
    path("projects/<int:pk>/edit/", views.project_edit, name="project-edit"),
    path("projects/<int:pk>/labels/", views.project_labels, name="project-labels"),
    path("projects/<int:pk>/labels/<int:label_pk>/attributes/", views.label_attributes, name="label-attributes"),
    path("projects/<int:pk>/members/", views.project_members, name="project-members"),
    path("projects/<int:pk>/images/", views.image_list, name="image-list"),
    path("projects/<int:pk>/upload/", views.image_upload, name="image-upload"),
    path("projects/<int:pk>/queue/next/", views.queue_next, name="queue-next"),
    path("images/<int:pk>/edit/", views.editor, name="editor"),
    path("projects/<int:pk>/review/next/", dataset_views.review_next, name="review-next"),
    path("projects/<int:pk>/datasets/", dataset_views.datasets_page, name="dataset-list"),
    path("projects/<int:pk>/import/", dataset_views.import_page, name="dataset-import"),
    path("projects/<int:pk>/models/", learning_views.models_page, name="project-models"),
    path("projects/<int:pk>/backups/", backup_views.backups_page, name="project-backups"),
    path("projects/<int:pk>/time/", quality_views.time_page, name="project-time"),
    path("projects/<int:pk>/quality/", quality_views.quality_page, name="project-quality"),
    path("restore/", backup_views.restore_page, name="project-restore"),
]
