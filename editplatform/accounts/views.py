"""Second-factor pages: enrol a TOTP device once, then verify each session."""

from __future__ import annotations

from base64 import b32encode
from io import BytesIO

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.forms import TokenForm
from editplatform.accounts.two_factor import confirmed_totp_device


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _qr_svg(uri: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


@login_required
def two_factor(request):
    if request.user.is_verified():
        return redirect(_next_url(request))
    device = confirmed_totp_device(request.user)
    enrolling = device is None
    if enrolling:
        device, _ = TOTPDevice.objects.get_or_create(user=request.user, name="authenticator", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, why = device.verify_is_allowed()
        if not allowed:
            wait = (why or {}).get("locked_until")
            form.add_error("token", "Too many attempts; wait a few seconds before the next code."
                           + (f" (until {wait:%H:%M:%S} UTC)" if wait else ""))
        elif device.verify_token(form.cleaned_data["token"]):
            if enrolling:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(_next_url(request))
        else:
            form.add_error("token", "That code is not valid (or was already used). Try the current one.")
    context = {"form": form, "enrolling": enrolling, "next": _next_url(request)}
    if enrolling:
        context.update(secret=b32encode(device.bin_key).decode(), config_url=device.config_url,
                       qr_svg=mark_safe(_qr_svg(device.config_url)))  # noqa: S308 - SVG made by qrcode from our URI
    return render(request, "accounts/two_factor.html", context)
