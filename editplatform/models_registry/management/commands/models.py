"""`manage.py models ...`: the model registry from the command line.

manage.py models list
manage.py models register PATH --by ADMIN [--name NAME]
manage.py models approve VERSION --by MODEL_APPROVER [--comment TEXT]
manage.py models activate VERSION --by ADMIN        (someone other than the approver)
manage.py models retire VERSION --by ADMIN --reason TEXT
manage.py models bootstrap [PATH]                   (make run: first start only)
manage.py models extend-catalog VERSION --folder DIR --name EDIT --by ADMIN ...
    fit a new InterFaceGAN direction from a labelled folder (DIR/positive, DIR/negative)
    and register a child version whose catalog holds it (editplatform.models_registry.extend)

VERSION may be a unique prefix of the version hash. Every step names the person it is
done for (``--by``) and goes through the same rules and audit events as the pages.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from editplatform.core.errors import DomainError
from editplatform.models_registry import services
from editplatform.models_registry.models import ModelVersion


def _user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user {username!r}") from None


def _version(prefix: str) -> ModelVersion:
    rows = list(ModelVersion.objects.filter(version__startswith=prefix.lower())[:2])
    if len(rows) != 1:
        raise CommandError(
            f"no registered version starts with {prefix!r}"
            if not rows
            else f"{prefix!r} is ambiguous; give more of the hash"
        )
    return rows[0]


class Command(BaseCommand):
    help = "Model registry: list, register, approve, activate, retire, bootstrap, extend-catalog."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        reg = sub.add_parser("register")
        reg.add_argument("path")
        reg.add_argument("--by", required=True)
        reg.add_argument("--name", default="")
        app = sub.add_parser("approve")
        app.add_argument("version")
        app.add_argument("--by", required=True)
        app.add_argument("--comment", default="")
        act = sub.add_parser("activate")
        act.add_argument("version")
        act.add_argument("--by", required=True)
        ret = sub.add_parser("retire")
        ret.add_argument("version")
        ret.add_argument("--by", required=True)
        ret.add_argument("--reason", required=True)
        boot = sub.add_parser("bootstrap")
        boot.add_argument("path", nargs="?", default=None)
        ext = sub.add_parser("extend-catalog")
        ext.add_argument("version")
        ext.add_argument("--folder", required=True, help="DIR/positive and DIR/negative images")
        ext.add_argument("--name", required=True, help="the new edit's name")
        ext.add_argument("--description", default="")
        ext.add_argument("--by", required=True)
        ext.add_argument("--strength", type=float, default=None)
        ext.add_argument("--holdout", type=float, default=0.25)
        ext.add_argument("--seed", type=int, default=0)
        ext.add_argument("--classifier", default=None, help="measures class kept (sensitivity)")
        ext.add_argument("--mark-sensitive", default="", help="mark it sensitive, with a reason")
        ext.add_argument("--out", default=None, help="also keep the child bundle here")

    def handle(self, *args, action: str, **opts):
        try:
            getattr(self, "_" + action.replace("-", "_"))(**opts)
        except DomainError as exc:
            raise CommandError(exc.message) from None

    def _list(self, **_):
        for mv in ModelVersion.objects.order_by("registered_at"):
            self.stdout.write(
                f"{mv.version}  {mv.state:<10}  {mv.purpose:<6}  {mv.name}"
                + (f"  (parent {mv.parent_version[:12]})" if mv.parent_version else "")
            )

    def _register(self, path, by, name, **_):
        mv = services.register_bundle(source=Path(path), user=_user(by), name=name)
        self.stdout.write(f"registered {mv.version} ({mv.name})")

    def _approve(self, version, by, comment, **_):
        mv = _version(version)
        services.approve(mv, _user(by), bundle_sha256=mv.version, comment=comment)
        self.stdout.write(f"approved {mv.version}; a second person (an admin) may activate it")

    def _activate(self, version, by, **_):
        mv = _version(version)
        services.activate(mv, _user(by), bundle_sha256=mv.version)
        self.stdout.write(f"activated {mv.version} for {mv.purpose}")

    def _retire(self, version, by, reason, **_):
        mv = _version(version)
        services.retire(mv, _user(by), reason=reason)
        self.stdout.write(f"retired {mv.version}")

    def _bootstrap(self, path, **_):
        mv = services.bootstrap(Path(path or settings.MODEL_BUNDLE))
        if mv is None:
            self.stdout.write("model registry already holds versions; nothing to bootstrap")
        else:
            self.stdout.write(f"bootstrapped {mv.version} ({mv.name}): registered and active")

    def _extend_catalog(
        self, version, folder, name, description, by, strength, holdout, seed, out, **opts
    ):
        from editplatform.models_registry import extend

        parent = _version(version)
        child = extend.extend_catalog(
            parent,
            folder=Path(folder),
            edit_name=name,
            description=description,
            user=_user(by),
            strength=strength,
            holdout=holdout,
            seed=seed,
            classifier=Path(opts["classifier"]) if opts.get("classifier") else None,
            mark_sensitive=opts.get("mark_sensitive") or "",
            out=Path(out) if out else None,
        )
        entry = next(e for e in child.card["edits"] if e["name"] == name)
        self.stdout.write(
            f"registered child {child.version} of {parent.short}: edit {name!r} "
            f"success {entry['success']}, sensitive {entry['sensitive']} ({entry['reason']})"
        )
