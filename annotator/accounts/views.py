"""The people pages: accounts (admins), your own account (password), the set-password link."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy

from annotator.core.errors import DomainError

from . import services
from .forms import AccountForm
from .selectors import is_admin, users_list

# What a page shows once after a redirect: a new account's password or set-password link.
_SHOW_ONCE = "accounts:new-access"


def remember_access(request: HttpRequest, *, username: str, password: str | None, path: str | None) -> None:
    """Keep a new account's way in for the next page view only (then it is gone from the session)."""
    request.session[_SHOW_ONCE] = {
        "username": username, "password": password, "url": request.build_absolute_uri(path) if path else None,
    }


def pop_access(request: HttpRequest) -> dict | None:
    return request.session.pop(_SHOW_ONCE, None)


@login_required
def people_page(request: HttpRequest) -> HttpResponse:
    if not is_admin(request.user):
        raise PermissionDenied("Only administrators can manage accounts.")
    form = AccountForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("action") == "link":
            user = get_object_or_404(get_user_model(), pk=request.POST.get("user") if (request.POST.get("user") or "").isdigit() else 0)
            remember_access(request, username=user.get_username(), password=None, path=services.set_password_link_renew(user=user))
            return redirect("people")
        if form.is_valid():
            try:
                account = services.account_create(**form.cleaned_data)
            except DomainError as exc:
                form.add_error("username", exc.detail)
            else:
                messages.success(request, f"Account {account.user.get_username()} created.")
                remember_access(request, username=account.user.get_username(), password=account.password, path=account.set_password_path)
                return redirect("people")
    return render(request, "accounts/people.html", {"form": form, "users": users_list(), "new_access": pop_access(request)})


@login_required
def account_page(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, form.user)  # stay logged in with the new password
        messages.success(request, "Your password is changed.")
        return redirect("account")
    return render(request, "accounts/account.html", {"form": form})


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The page a set-password link opens: choose a password, then you are logged in."""

    template_name = "accounts/set_password.html"
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("project-list")

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set. Welcome!")
        return response
