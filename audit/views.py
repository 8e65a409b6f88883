"""The audit-trail browser (read-only; `audit.access.reader_required` on every page).

Pages: the event list (filters, keyset pagination by sequence number), event detail
(hashes and a "verified" mark from an inclusion proof against the latest signed
checkpoint), the verify action, export and the public key. Pages about what the
events describe (a job's timeline and artifacts) belong to the apps that own those
things; `audit.subjects` links subjects to them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

from django import forms
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit import actions, signing
from audit import log as audit_log
from audit.access import reader_required
from audit.models import AuditEvent
from audit.queries import filter_events, inclusion_status

PAGE_SIZE = 50
MAX_SEQ = 2**63 - 1  # audit_event.seq is a BIGINT: larger numbers name no event


def _action_choices() -> list[tuple[str, str]]:
    """Read when a form is built, so actions registered after import are offered too."""
    return [("", "any action")] + [(name, name) for name in actions.registry.names()]


class FilterForm(forms.Form):
    # Not stripped: these match stored strings exactly, and a subject may end in a space.
    actor = forms.CharField(required=False, max_length=150, strip=False)
    action = forms.ChoiceField(required=False, choices=_action_choices)
    subject = forms.CharField(required=False, max_length=200, strip=False, label="Job / subject")
    request_id = forms.CharField(required=False, max_length=64, strip=False, label="Request id")
    date_from = forms.DateField(
        required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To (UTC, inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    seq = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ, label="Event id")


class CursorForm(forms.Form):
    """The pager's keyset cursors (seq numbers); anything else is a 400, never a guess."""

    before = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    after = forms.IntegerField(required=False, min_value=-1, max_value=MAX_SEQ)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _day_end(day: dt.date) -> dt.datetime | None:
    """The instant after `day` (exclusive bound); None after the last representable day."""
    return None if day == dt.date.max else _day_start(day + dt.timedelta(days=1))


def date_bounds(data: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    since = _day_start(data["date_from"]) if data.get("date_from") else None
    until = _day_end(data["date_to"]) if data.get("date_to") else None
    return since, until


def filtered_events(data: dict):
    """Events matching the form's filters, newest first (dates are whole UTC days)."""
    since, until = date_bounds(data)
    return filter_events(
        seq=data.get("seq"),
        actor=data.get("actor") or "",
        action=data.get("action") or "",
        subject=data.get("subject") or "",
        request_id=data.get("request_id") or "",
        since=since,
        until=until,
    ).order_by("-seq")


def bad_request(request, message: str, forms_with_errors=()) -> HttpResponse:
    """The styled 400 page, naming each offending field."""
    problems = [
        f"{name}: {' '.join(errors)}"
        for form in forms_with_errors
        for name, errors in form.errors.items()
    ]
    return render(
        request, "audit/bad_request.html", {"message": message, "problems": problems}, status=400
    )


@require_GET
@reader_required
def event_list(request):
    form = FilterForm(request.GET or None)
    cursors = CursorForm(request.GET)
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    context = {
        "form": form,
        "events": [],
        "has_older": False,
        "has_newer": False,
        "older_seq": None,
        "newer_seq": None,
        "query": query.urlencode(),
        "head": audit_log.read_head(),
        "checkpoint": audit_log.latest_checkpoint(),
    }
    if not cursors.is_valid():
        return bad_request(request, "The page cursor is not an event number.", [cursors])
    if form.is_bound and not form.is_valid():
        # The form shows its errors; no rows, since none match a filter that means nothing.
        return render(request, "audit/event_list.html", context, status=400)
    events = filtered_events(form.cleaned_data if form.is_bound else {}).only(
        "seq", "created_at", "actor_name", "action", "subject", "request_id", "entry"
    )  # entry: the summary
    before, after = cursors.cleaned_data["before"], cursors.cleaned_data["after"]
    if after is not None:
        page = list(events.filter(seq__gt=after).order_by("seq")[: PAGE_SIZE + 1])
        has_newer = len(page) > PAGE_SIZE
        page = list(reversed(page[:PAGE_SIZE]))
        has_older = bool(page) and events.filter(seq__lt=page[-1].seq).exists()
    else:
        if before is not None:
            events = events.filter(seq__lt=before)
        page = list(events[: PAGE_SIZE + 1])
        has_older = len(page) > PAGE_SIZE
        page = page[:PAGE_SIZE]
        has_newer = before is not None and bool(page)
    context.update(
        events=page,
        has_older=has_older,
        has_newer=has_newer,
        older_seq=page[-1].seq if page else None,
        newer_seq=page[0].seq if page else None,
    )
    return render(request, "audit/event_list.html", context)


@require_GET
@reader_required
def event_detail(request, seq: int):
    event = AuditEvent.objects.filter(seq=seq).first() if seq <= MAX_SEQ else None
    if event is None:
        raise Http404("no such event")
    data = _entry_data(event)
    return render(
        request,
        "audit/event_detail.html",
        {
            "event": event,
            "data": data,
            "payload_pretty": json.dumps(data.get("payload", {}), indent=2, sort_keys=True),
            "status": inclusion_status(event),
        },
    )


def _entry_data(event: AuditEvent) -> dict:
    """The hashed entry as a dict; a row whose entry is not a JSON object (tampered) still
    shows, from its columns, and fails its inclusion proof on the same page."""
    try:
        data = json.loads(event.entry)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    return {
        "time": event.created_at.isoformat() if event.created_at else "",
        "actor": event.actor_name,
        "action": event.action,
        "subject": event.subject,
        "request_id": event.request_id,
        "payload": {"(unreadable entry)": event.entry[:2000]},
    }


@require_http_methods(["GET", "POST"])
@reader_required
def verify_view(request):
    result = None
    if request.method == "POST":
        from audit.verify import verify_log

        result = verify_log()
        with transaction.atomic():
            audit_log.append_event(
                actions.AUDIT_VERIFIED,
                actor=request.user,
                payload={
                    "ok": result.ok,
                    "size": result.size,
                    "first_bad_index": result.first_bad_index,
                    "root_hash": base64.b64encode(result.root_hash).decode(),
                    "problems": [str(p) for p in result.problems[:5]],
                },
            )
    return render(
        request,
        "audit/verify.html",
        {
            "result": result,
            "vkey": signing.get_verifier().vkey(),
            "export_path": audit_log.export_path(),
            "checkpoint": audit_log.latest_checkpoint(),
        },
        status=200,
    )


@require_GET
@reader_required
def public_key(request):
    return HttpResponse(
        signing.get_verifier().vkey() + "\n", content_type="text/plain; charset=utf-8"
    )


@require_POST
@reader_required
def export_view(request):
    from audit.export import iter_export

    form = FilterForm(request.POST)
    if not form.is_valid():
        return bad_request(request, "The export filters are invalid; nothing was exported.", [form])
    fmt = request.POST.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        fmt = "jsonl"
    data = form.cleaned_data
    since, until = date_bounds(data)
    filters = {
        "since": since,
        "until": until,
        "subject": data.get("subject") or "",
        "action": data.get("action") or "",
        "actor": data.get("actor") or "",
    }
    with transaction.atomic():
        audit_log.append_event(
            actions.AUDIT_EXPORTED,
            actor=request.user,
            payload={
                "format": fmt,
                **{
                    k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                    for k, v in filters.items()
                    if v
                },
            },
        )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        iter_export(fmt=fmt, **filters),
        content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson",
    )
    response["Content-Disposition"] = f'attachment; filename="audit-export-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
