"""Second-factor pages: enrol a TOTP device once, then verify each session.

Enrolment of a privileged role (approver, reviewer, admin) starts with a one-time
enrolment code an administrator issued: the password alone never binds a new device.
The device's secret is shown to the enrolling user once, on the page that creates it;
reloading makes a new secret (the old one is then useless). Every wrong code is a
`user.2fa_failed` event; `user.login` is written here, after the code.
"""

from __future__ import annotations

from base64 import b32encode
from io import BytesIO

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from editplatform.accounts import audit_events as events
from editplatform.accounts.forms import EnrolmentCodeForm, TokenForm
from editplatform.accounts.recovery import needs_enrolment_code, record, valid_enrolment_code
from editplatform.accounts.sign_in import client, record_login
from editplatform.accounts.two_factor import confirmed_totp_device

_CODE_SESSION_KEY = "styleledger_enrolment_code"


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _qr_svg(uri: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def _failed(request, reason: str) -> None:
    record(
        events.USER_2FA_FAILED,
        actor=request.user,
        subject=f"user:{request.user.pk}",
        payload={"reason": reason, **client(request)},
    )


def _fresh_secret(device: TOTPDevice) -> dict:
    """A new key for the unconfirmed device, shown this once."""
    device.key = default_key()
    device.save(update_fields=["key"])
    return {
        "secret": b32encode(device.bin_key).decode(),
        "config_url": device.config_url,
        "qr_svg": mark_safe(_qr_svg(device.config_url)),
    }  # noqa: S308 - SVG made by qrcode from our URI


@login_required
def two_factor(request):
    if request.user.is_verified():
        return redirect(_next_url(request))
    device = confirmed_totp_device(request.user)
    if device is None:
        return _enrol(request)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, why = device.verify_is_allowed()
        if not allowed:
            wait = (why or {}).get("locked_until")
            form.add_error(
                "token",
                "Too many attempts; wait a few seconds before the next code."
                + (f" (until {wait:%H:%M:%S} UTC)" if wait else ""),
            )
            _failed(request, "throttled")
        elif device.verify_token(form.cleaned_data["token"]):
            otp_login(request, device)
            record_login(request, request.user, second_factor="totp")
            return redirect(_next_url(request))
        else:
            form.add_error(
                "token", "That code is not valid (or was already used). Try the current one."
            )
            _failed(request, "wrong code")
    return render(
        request,
        "accounts/two_factor.html",
        {"form": form, "enrolling": False, "next": _next_url(request)},
    )


def _enrol(request):
    user = request.user
    gated = needs_enrolment_code(user)
    code_id = request.session.get(_CODE_SESSION_KEY)
    if gated and code_id is None:
        return _enrolment_code_step(request)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, confirmed=False, defaults={"name": "authenticator"}
    )
    context = {"enrolling": True, "next": _next_url(request)}
    if request.method != "POST" or "enrolment_code" in request.POST:
        context.update(form=TokenForm(), **_fresh_secret(device))
        return render(request, "accounts/two_factor.html", context)
    form = TokenForm(request.POST)
    if form.is_valid():
        allowed, _why = device.verify_is_allowed()
        if allowed and device.verify_token(form.cleaned_data["token"]):
            with transaction.atomic():
                if gated:
                    from editplatform.accounts.models import EnrolmentCode

                    used = EnrolmentCode.objects.filter(
                        pk=code_id, user=user, used_at__isnull=True, expires_at__gt=timezone.now()
                    ).update(used_at=timezone.now())
                    if not used:
                        request.session.pop(_CODE_SESSION_KEY, None)
                        return redirect(request.get_full_path())
                device.confirmed = True
                device.save(
                    update_fields=["confirmed"]
                )  # signal: user.2fa_enrolled, recovery re-enrolment
            request.session.pop(_CODE_SESSION_KEY, None)
            otp_login(request, device)
            record_login(request, user, second_factor="totp (enrolled)")
            return redirect(_next_url(request))
        form.add_error(
            "token", "That code is not valid. Reload this page to start over with a new secret."
        )
        _failed(request, "wrong enrolment code from the authenticator")
    context["form"] = form
    return render(request, "accounts/two_factor.html", context)


def _enrolment_code_step(request):
    form = EnrolmentCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, _why = _code_attempts_allowed(request)
        entry = (
            valid_enrolment_code(request.user, form.cleaned_data["enrolment_code"])
            if allowed
            else None
        )
        if entry is not None:
            request.session[_CODE_SESSION_KEY] = entry.pk
            return redirect(request.get_full_path())
        form.add_error(
            "enrolment_code",
            "That enrolment code is not valid, was used or has expired; ask an "
            "administrator for a new one."
            if allowed
            else "Too many wrong enrolment codes in this session; sign in again.",
        )
        _failed(request, "wrong enrolment code")
    return render(
        request,
        "accounts/two_factor.html",
        {"code_form": form, "needs_code": True, "enrolling": True, "next": _next_url(request)},
    )


def _code_attempts_allowed(request) -> tuple[bool, int]:
    tries = int(request.session.get("styleledger_code_tries", 0)) + 1
    request.session["styleledger_code_tries"] = tries
    return tries <= 5, tries
