"""REST API v1 for the audit log: events, inclusion proofs, checkpoints, consistency.

Read-only. Who may read:
- integrations, through an API key holding the `audit:read` scope (checked by the
  project's default DRF permission classes, which these views keep);
- people holding `audit.view_auditevent` (`audit.access`), through their portal
  session (with its second factor).
Everyone else gets 403. Reading the log is not itself logged (an event per read
would grow the log with its own reads); artifact reads stay on their audited paths.

Hashes are base64 (as in the signed checkpoint notes), with a hex copy of the leaf
hash and root for people. Proofs are RFC 9162 audit paths, leaf level first: check
them with `audit.tlog.verify_inclusion` / `verify_consistency` (or any RFC 9162
implementation) against a checkpoint note whose signature you verified with the
log's public key (`verifier_key`).
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from audit import access, actions, signing, tlog
from audit import log as audit_log
from audit.models import AuditEvent
from audit.queries import filter_events, inclusion_status
from editplatform.core.api import ApiErrorSerializer

SCOPE_AUDIT_READ = "audit:read"  # the API-key scope these views declare

MAX_SEQ = 2**63 - 1  # audit_event.seq is a BIGINT
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def b64(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


# --- access --------------------------------------------------------------------------


class IsAuditReader(permissions.BasePermission):
    """Credentials other than a session (API keys: `request.auth` is the key, its scope
    checked by the default permission classes) pass here; people need the permission."""

    message = (
        "the audit API is for holders of the audit.view_auditevent permission "
        "and API keys with the 'audit:read' scope"
    )

    def has_permission(self, request, view) -> bool:
        if request.auth is not None:
            return True
        if not access.can_read(request.user):
            return False
        if not access.second_factor_ok(request.user):
            self.message = access.UNVERIFIED_MESSAGE
            return False
        return True


class UnknownFormat(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = (
        "format: unknown response format (this API answers JSON: format=json or leave it out)"
    )
    default_code = "invalid"


class AuditAPIView(APIView):
    # The defaults (authenticated; an API key must hold the view's declared scope),
    # narrowed to audit readers.
    permission_classes = [*api_settings.DEFAULT_PERMISSION_CLASSES, IsAuditReader]
    required_scopes = {"GET": SCOPE_AUDIT_READ}

    def perform_content_negotiation(self, request, force=False):
        """An unknown `?format=` is the caller's mistake (400 naming the field), not a missing
        page."""
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            raise UnknownFormat() from None

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, UnknownFormat) and isinstance(response.data, dict):
            response.data["field"] = "format"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        return response


# --- serializers (responses and query parameters) ------------------------------------


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(
        help_text="leaf index in the Merkle tree (0, 1, 2, ... without gaps)"
    )
    time = serializers.DateTimeField(source="created_at")
    action = serializers.CharField()
    actor = serializers.CharField(
        source="actor_name", help_text="username at the time (empty for the system)"
    )
    subject = serializers.CharField(help_text="what the event is about, e.g. job:<uuid>")
    subjects = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="every subject the event names: the main one first, then the others",
    )
    summary = serializers.CharField(
        read_only=True, help_text="a readable one-line summary of the event"
    )
    request_id = serializers.CharField()
    payload = serializers.DictField(
        help_text="the event's canonical payload (hashes, edits, metrics, ...)"
    )
    leaf_hash = serializers.SerializerMethodField(help_text="hex SHA-256(0x00 || entry)")

    def get_leaf_hash(self, event: AuditEvent) -> str:
        return event.leaf_hex


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="the next page's URL (keyset by seq); null on the last page"
    )


class InclusionSerializer(serializers.Serializer):
    verified = serializers.BooleanField(
        help_text="the server checked the entry against its leaf hash and the proof against the "
        "checkpoint's signed root"
    )
    reason = serializers.CharField(
        allow_blank=True, help_text="why not verified (empty when verified)"
    )
    tree_size = serializers.IntegerField(allow_null=True, help_text="size of the checkpoint's tree")
    root_hash = serializers.CharField(allow_null=True, help_text="base64 root of that tree")
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="base64 audit path, leaf level first"
    )
    checkpoint = serializers.CharField(
        allow_null=True, help_text="the signed checkpoint note proved against"
    )


class EventDetailSerializer(EventSerializer):
    entry = serializers.CharField(help_text="the canonical JSON exactly as hashed (UTF-8)")
    leaf_hash_b64 = serializers.SerializerMethodField()
    inclusion = InclusionSerializer()

    def get_leaf_hash_b64(self, event: AuditEvent) -> str:
        return b64(event.leaf_hash)


class CheckpointSerializer(serializers.Serializer):
    origin = serializers.CharField(help_text="the log's name (first line of the note)")
    size = serializers.IntegerField(help_text="tree size the checkpoint commits to")
    root_hash = serializers.CharField(help_text="base64 root hash")
    root_hash_hex = serializers.CharField()
    note = serializers.CharField(
        help_text="C2SP signed note: origin, size, root, blank line, Ed25519 signature line"
    )
    created_at = serializers.DateTimeField()
    verifier_key = serializers.CharField(
        help_text="the log's public key as a note verifier key (name+id+key)"
    )
    log_size = serializers.IntegerField(
        help_text="events appended so far (the next checkpoint will cover them)"
    )


class ConsistencySerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    old_root = serializers.CharField(
        help_text="base64 root of the first `old` events, from the stored tree"
    )
    new_root = serializers.CharField(
        help_text="base64 root of the first `new` events, from the stored tree"
    )
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="base64 RFC 9162 consistency proof"
    )


class EventQuery(serializers.Serializer):
    # Exact matches: not trimmed (a stored subject may begin or end with a space).
    actor = serializers.CharField(
        required=False, max_length=150, trim_whitespace=False, help_text="exact username"
    )
    action = serializers.ChoiceField(required=False, choices=())
    subject = serializers.CharField(
        required=False,
        max_length=200,
        trim_whitespace=False,
        help_text="a subject the event names (main or other), e.g. job:<uuid>; "
        "a bare id or SHA-256 also matches its prefixed subject",
    )
    request_id = serializers.CharField(required=False, max_length=64, trim_whitespace=False)
    since = serializers.DateTimeField(
        required=False, help_text="events at or after this instant (ISO 8601)"
    )
    until = serializers.DateTimeField(
        required=False, help_text="events before this instant (ISO 8601)"
    )
    seq = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_SEQ, help_text="one event by number"
    )
    after_seq = serializers.IntegerField(
        required=False,
        min_value=-1,
        max_value=MAX_SEQ,
        help_text="only events with a greater seq (the ascending page cursor)",
    )
    before_seq = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEQ,
        help_text="only events with a smaller seq (the descending page cursor)",
    )
    order = serializers.ChoiceField(
        required=False,
        choices=["asc", "desc"],
        default="asc",
        help_text="asc: oldest first (default, for syncing); desc: newest first",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = actions.registry.names()  # as registered by then


class ConsistencyQuery(serializers.Serializer):
    old = serializers.IntegerField(
        min_value=0, max_value=MAX_SEQ, help_text="the smaller tree size"
    )
    new = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEQ,
        help_text="the larger tree size (default: the latest checkpoint's)",
    )


def invalid(serializer: serializers.Serializer) -> Response:
    """A 400 in the API's error shape, naming the first offending parameter."""
    name, problems = next(iter(serializer.errors.items()))
    message = problems[0] if isinstance(problems, list) and problems else problems
    return Response(
        {"detail": f"{name}: {message}", "code": "invalid", "field": name},
        status=status.HTTP_400_BAD_REQUEST,
    )


DENIED = {
    401: OpenApiResponse(
        ApiErrorSerializer, description="no credentials, or an invalid, expired or revoked key"
    ),
    403: OpenApiResponse(
        ApiErrorSerializer,
        description="a key without 'audit:read', or a person without the "
        "audit.view_auditevent permission or second factor",
    ),
}


# --- views -----------------------------------------------------------------------------


class EventListView(AuditAPIView):
    @extend_schema(
        operation_id="audit_events_list",
        tags=["audit"],
        parameters=[EventQuery],
        responses={200: EventPageSerializer, 400: ApiErrorSerializer, **DENIED},
        description="Events matching every filter, keyset-paginated by seq: follow `next` "
        "(it carries "
        "`after_seq`, or `before_seq` with order=desc). Filters are exact matches.",
    )
    def get(self, request):
        query = EventQuery(data=request.query_params)
        if not query.is_valid():
            return invalid(query)
        params = query.validated_data
        events = filter_events(
            seq=params.get("seq"),
            actor=params.get("actor", ""),
            action=params.get("action", ""),
            subject=params.get("subject", ""),
            request_id=params.get("request_id", ""),
            since=params.get("since"),
            until=params.get("until"),
        )
        if params.get("after_seq") is not None:
            events = events.filter(seq__gt=params["after_seq"])
        if params.get("before_seq") is not None:
            events = events.filter(seq__lt=params["before_seq"])
        descending = params["order"] == "desc"
        limit = params["limit"]
        page = list(events.order_by("-seq" if descending else "seq")[: limit + 1])
        more, page = len(page) > limit, page[:limit]
        next_url = None
        if more:
            cursor = {"before_seq" if descending else "after_seq": page[-1].seq}
            next_url = (
                request.build_absolute_uri(request.path)
                + "?"
                + urlencode({**request.query_params.dict(), **cursor})
            )
        return Response({"results": EventSerializer(page, many=True).data, "next": next_url})


class EventDetailView(AuditAPIView):
    @extend_schema(
        operation_id="audit_events_retrieve",
        tags=["audit"],
        parameters=[
            OpenApiParameter(
                "seq",
                {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                OpenApiParameter.PATH,
                description="the event's sequence number",
            )
        ],
        responses={200: EventDetailSerializer, 404: ApiErrorSerializer, **DENIED},
        description="The event, its canonical entry and leaf hash, and an inclusion proof against "
        "the latest "
        "signed checkpoint (with that checkpoint's note). An event newer than the latest "
        "checkpoint "
        "has no proof yet (`verified` false, `reason` says so).",
    )
    def get(self, request, seq: int):
        event = AuditEvent.objects.filter(seq=seq).first() if seq <= MAX_SEQ else None
        if event is None:
            raise Http404("no such event")
        status_ = inclusion_status(event)
        signed = status_["checkpoint"]
        event.inclusion = {
            "verified": status_["verified"],
            "reason": status_["reason"],
            "tree_size": signed.size if signed else None,
            "root_hash": status_["root_b64"],
            "proof": status_["proof"],
            "checkpoint": status_["note"],
        }
        data = EventDetailSerializer(event).data
        return Response(data)


class CheckpointView(AuditAPIView):
    @extend_schema(
        operation_id="audit_checkpoint",
        tags=["audit"],
        responses={
            200: CheckpointSerializer,
            404: OpenApiResponse(ApiErrorSerializer, description="no checkpoint yet"),
            **DENIED,
        },
        description="The latest signed checkpoint. Verify its note with `verifier_key` "
        "(or a copy of the log's "
        "public key you obtained independently), then check proofs against its root.",
        examples=[
            OpenApiExample(
                "checkpoint",
                response_only=True,
                value={
                    "origin": "styleledger.example/audit",
                    "size": 8,
                    "root_hash": "XcnaeacGWamtVbdwHe3ZqauduCOtL0lgz+Nw7/9GQyg=",
                    "root_hash_hex": (
                        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
                    ),
                    "note": (
                        "styleledger.example/audit\n8\nXcnaeacGWamtVbdwHe3ZqauduCOtL0lgz+Nw7/9GQyg=\n"
                        "\n\u2014 styleledger.example/audit ...\n"
                    ),
                    "created_at": "2025-01-01T00:00:00Z",
                    "verifier_key": "styleledger.example/audit+1234abcd+AQ...",
                    "log_size": 9,
                },
            )
        ],
    )
    def get(self, request):
        checkpoint = audit_log.latest_checkpoint()
        if checkpoint is None:
            raise Http404("no signed checkpoint yet")
        return Response(
            {
                "origin": signing.origin(),
                "size": checkpoint.size,
                "root_hash": b64(checkpoint.root_hash),
                "root_hash_hex": bytes(checkpoint.root_hash).hex(),
                "note": checkpoint.note,
                "created_at": serializers.DateTimeField().to_representation(checkpoint.created_at),
                "verifier_key": signing.get_verifier().vkey(),
                "log_size": audit_log.read_head().size,
            }
        )


class ConsistencyView(AuditAPIView):
    @extend_schema(
        operation_id="audit_consistency",
        tags=["audit"],
        parameters=[ConsistencyQuery],
        responses={200: ConsistencySerializer, 400: ApiErrorSerializer, **DENIED},
        description="An RFC 9162 proof that the log's first `old` events are a prefix of its "
        "first `new` "
        "events (0 <= old <= new <= the log's size). Verify it between two checkpoints "
        "you trust.",
    )
    def get(self, request):
        query = ConsistencyQuery(data=request.query_params)
        if not query.is_valid():
            return invalid(query)
        old = query.validated_data["old"]
        new = query.validated_data.get("new")
        if new is None:
            latest = audit_log.latest_checkpoint()
            new = latest.size if latest is not None else 0
        size = audit_log.read_head().size
        if not old <= new <= size:
            return Response(
                {
                    "detail": (
                        f"need 0 <= old <= new <= {size} (the log's size); got old={old}, new={new}"
                    ),
                    "code": "invalid",
                    "field": "new" if new > size else "old",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        reader = audit_log.hash_reader()
        proof = audit_log.consistency_proof(old, new)
        return Response(
            {
                "old": old,
                "new": new,
                "old_root": b64(tlog.tree_hash(old, reader)),
                "new_root": b64(tlog.tree_hash(new, reader)),
                "proof": [b64(h) for h in proof],
            }
        )
