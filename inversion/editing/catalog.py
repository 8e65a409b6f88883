"""The edit catalog: which edits a deployment offers, their ranges, which are sensitive.

The platform never lets a request name a raw direction: it names an *edit* from the
catalog, with a strength inside the edit's range. The catalog also says which edits
are sensitive (e.g. apparent age or skin tone) so the platform can require an approval
before running them. It ships inside the model bundle (``catalog.json``), next to the
directions it refers to by name, so a catalog and its directions are versioned together.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from inversion.editing.directions import Space, apply_direction, validate_direction
from inversion.errors import EditError, InvalidDirection, StrengthOutOfRange, UnknownEdit

__all__ = ["CATALOG_FORMAT_VERSION", "EditSpec", "EditCatalog", "KeepSpec"]

CATALOG_FORMAT_VERSION = 1
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


KEEP_ATTRIBUTES = ("tone",)  # what a keep loop can restore (measured by pixel_measures)
_KEEP_FIELDS = ("attribute", "direction", "layers", "max_strength", "tolerance", "renders")


@dataclass(frozen=True)
class KeepSpec:
    """What an edit restores after it is applied: a per-image closed loop.

    Some edits move a property they should keep (a category swap darkens the item).
    No fixed ``w + s*d`` can undo that, as the drift differs per image; so after the
    edit, a second direction (``direction`` on W+ codes ``layers`` [start, end)) is
    applied with a strength solved per image, within +-``max_strength`` and with at
    most ``renders`` extra renders, to bring ``attribute`` back to the reconstruction's
    value. ``tolerance`` is what the catalog promises for |change| (the loop stops
    early once every image is within a tenth of it). ``"tone"`` is the item's mean
    brightness, measured as the evaluation measures it.
    """

    attribute: str
    direction: str
    layers: tuple[int, int] | None
    max_strength: float
    tolerance: float
    renders: int = 4

    def __post_init__(self) -> None:
        if self.attribute not in KEEP_ATTRIBUTES:
            raise EditError(f"keep.attribute must be one of {list(KEEP_ATTRIBUTES)}")
        if not isinstance(self.direction, str) or not self.direction:
            raise EditError("keep.direction must name a direction")
        if self.layers is not None:
            try:
                start, end = (int(v) for v in self.layers)
            except (TypeError, ValueError):
                raise EditError("keep.layers must be [start, end) or null") from None
            if not 0 <= start < end:
                raise EditError(f"keep.layers: empty or negative range [{start}, {end})")
            object.__setattr__(self, "layers", (start, end))
        for name in ("max_strength", "tolerance"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise EditError(f"keep.{name} must be a positive finite number")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.renders, int) or isinstance(self.renders, bool):
            raise EditError("keep.renders must be an integer")
        if not 1 <= self.renders <= 16:
            raise EditError("keep.renders must be between 1 and 16")

    @classmethod
    def from_dict(cls, d: object, *, edit: str = "") -> KeepSpec:
        where = f"edit {edit!r}: " if edit else ""
        if not isinstance(d, Mapping):
            raise EditError(f"{where}keep must be an object")
        unknown = sorted(set(d) - set(_KEEP_FIELDS))
        if unknown:
            raise EditError(f"{where}keep has unknown fields {unknown}")
        missing = sorted({"attribute", "direction", "max_strength", "tolerance"} - set(d))
        if missing:
            raise EditError(f"{where}keep is missing fields {missing}")
        values = dict(d)
        if isinstance(values.get("layers"), list):
            values["layers"] = tuple(values["layers"])
        values.setdefault("layers", None)
        try:
            return cls(**values)
        except EditError as exc:
            raise EditError(f"{where}{exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "direction": self.direction,
            "layers": list(self.layers) if self.layers is not None else None,
            "max_strength": self.max_strength,
            "tolerance": self.tolerance,
            "renders": self.renders,
        }


@dataclass(frozen=True)
class EditSpec:
    """One offered edit.

    ``direction`` names a tensor in the bundle's directions; ``layers`` is the W+ layer
    range [start, end) it acts on (``None``: all layers); strengths are limited to
    [min_strength, max_strength]; ``sensitive`` edits need an approval.

    Optional, descriptive (the platform shows them; nothing is enforced from them):
    ``changes`` says what the edit is meant to change and ``preserves`` what it is meant
    to keep, in plain words; ``measured`` records how well it does both at its default
    strength on held-out images (e.g. ``{"class_kept": 0.93, "moved": 0.88, ...}``), so
    a catalog's claims travel with their evidence.

    Also optional, for people (the portal shows them):
    ``display_name`` is the edit's name for staff and ``technical`` the detail a model
    person needs (directions, layers); ``description`` is the one line staff read.
    Catalogs written before these fields existed load unchanged: :attr:`label` and
    :attr:`technical_detail` fall back to the name and the description. An unnamed
    GANSpace component (an unsupervised axis whose effect nobody has put into words)
    is not :attr:`offered_to_staff`; the API still accepts it by name.

    ``keep`` (optional, *enforced*): a :class:`KeepSpec` -- after the edit, a per-image
    closed loop restores the named attribute (``"tone"``: mean item brightness) to the
    reconstruction's value; :meth:`inversion.inverter.Inverter.edit` runs it. In JSON::

        "keep": {"attribute": "tone", "direction": "conditional_brightness",
                 "layers": [5, 8], "max_strength": 16, "tolerance": 0.1, "renders": 4}

    ``preserves`` should then state the tolerance, and ``measured`` how often it holds.
    """

    name: str
    description: str
    direction: str
    space: Space = "w"
    layers: tuple[int, int] | None = None
    min_strength: float = -3.0
    max_strength: float = 3.0
    default_strength: float = 0.0
    sensitive: bool = False
    changes: str = ""
    preserves: str = ""
    measured: Mapping[str, Any] | None = field(default=None, hash=False)
    display_name: str = ""
    technical: str = ""
    keep: KeepSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise EditError(
                f"edit name {self.name!r} must be lower-case letters, digits and '_', "
                "starting with a letter (at most 64 characters)"
            )
        if not isinstance(self.description, str):
            raise EditError(f"edit {self.name!r}: description must be a string")
        if not isinstance(self.direction, str) or not self.direction:
            raise EditError(f"edit {self.name!r}: direction must name a direction")
        if self.space not in ("w", "wplus"):
            raise EditError(f"edit {self.name!r}: space must be 'w' or 'wplus', got {self.space!r}")
        if self.layers is not None:
            try:
                start, end = (int(v) for v in self.layers)
            except (TypeError, ValueError):
                raise EditError(f"edit {self.name!r}: layers must be [start, end)") from None
            if not 0 <= start < end:
                raise EditError(
                    f"edit {self.name!r}: empty or negative layer range [{start}, {end})"
                )
            object.__setattr__(self, "layers", (start, end))
        for field_name in ("min_strength", "max_strength", "default_strength"):
            value = getattr(self, field_name)
            if not _is_number(value) or not math.isfinite(value):
                raise EditError(f"edit {self.name!r}: {field_name} must be a finite number")
            object.__setattr__(self, field_name, float(value))
        if not self.min_strength < self.max_strength:
            raise EditError(f"edit {self.name!r}: min_strength must be below max_strength")
        if not self.min_strength <= self.default_strength <= self.max_strength:
            raise EditError(f"edit {self.name!r}: default_strength outside its range")
        if not isinstance(self.sensitive, bool):
            raise EditError(f"edit {self.name!r}: sensitive must be true or false")
        for field_name in ("changes", "preserves"):
            if not isinstance(getattr(self, field_name), str):
                raise EditError(f"edit {self.name!r}: {field_name} must be a string")
        if self.measured is not None:
            if not isinstance(self.measured, Mapping):
                raise EditError(f"edit {self.name!r}: measured must be an object")
            try:  # JSON-only content, copied so the frozen spec cannot change under us
                object.__setattr__(self, "measured", json.loads(json.dumps(dict(self.measured))))
            except (TypeError, ValueError):
                raise EditError(f"edit {self.name!r}: measured must be plain JSON") from None
        for text_field in ("display_name", "technical"):
            if not isinstance(getattr(self, text_field), str):
                raise EditError(f"edit {self.name!r}: {text_field} must be a string")
        if self.keep is not None and not isinstance(self.keep, KeepSpec):
            object.__setattr__(self, "keep", KeepSpec.from_dict(self.keep, edit=self.name))

    @property
    def label(self) -> str:
        """The name staff see: the catalog's display name, else the edit name in words."""
        return self.display_name or self.name.replace("_", " ").capitalize()

    @property
    def summary(self) -> str:
        """One line for staff: the description's first sentence (the rest, and any
        ``technical`` text, sits behind the portal's "Technical detail" disclosure)."""
        text = " ".join(self.description.split())
        match = re.search(r"[.;](\s|$)", text)
        return text[: match.start()] + "." if match else text

    @property
    def technical_detail(self) -> str:
        """The model-level detail behind the portal's disclosure (else the description)."""
        return self.technical or self.description

    @property
    def is_ganspace_component(self) -> bool:
        return self.direction.startswith("ganspace_")

    @property
    def offered_to_staff(self) -> bool:
        """False for an unnamed GANSpace component: its effect has no plain words yet."""
        return not (self.is_ganspace_component and not self.display_name)

    def check_strength(self, strength: object) -> float:
        """Return ``strength`` as a float, or raise :class:`StrengthOutOfRange`."""
        if not _is_number(strength):
            raise StrengthOutOfRange(self.name, strength, self.min_strength, self.max_strength)
        value = float(strength)  # type: ignore[arg-type]
        if not (math.isfinite(value) and self.min_strength <= value <= self.max_strength):
            raise StrengthOutOfRange(self.name, strength, self.min_strength, self.max_strength)
        return value

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "description": self.description,
            "direction": self.direction,
            "space": self.space,
            "layers": list(self.layers) if self.layers is not None else None,
            "min_strength": self.min_strength,
            "max_strength": self.max_strength,
            "default_strength": self.default_strength,
            "sensitive": self.sensitive,
        }
        # the descriptive fields only when set, so older catalogs serialise unchanged
        if self.changes:
            d["changes"] = self.changes
        if self.preserves:
            d["preserves"] = self.preserves
        if self.measured is not None:
            d["measured"] = self.measured
        for text_field in ("display_name", "technical"):
            if getattr(self, text_field):
                d[text_field] = getattr(self, text_field)
        if self.keep is not None:
            d["keep"] = self.keep.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EditSpec:
        if not isinstance(d, Mapping):
            raise EditError(f"an edit entry must be an object, got {type(d).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise EditError(f"edit {d.get('name')!r}: unknown fields {unknown}")
        missing = sorted({"name", "description", "direction"} - set(d))
        if missing:
            raise EditError(f"edit {d.get('name')!r}: missing fields {missing}")
        values = dict(d)
        if isinstance(values.get("layers"), list):
            values["layers"] = tuple(values["layers"])
        return cls(**values)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class EditCatalog:
    """An ordered set of :class:`EditSpec`, looked up by name."""

    def __init__(self, specs: Iterable[EditSpec] = (), *, subject_kind: str = "") -> None:
        if not isinstance(subject_kind, str):
            raise EditError("the catalog's subject_kind must be a string")
        # What the photos show ("person", "product", ...): the portal words consent by it.
        self.subject_kind = subject_kind
        self._specs: dict[str, EditSpec] = {}
        for spec in specs:
            if not isinstance(spec, EditSpec):
                raise EditError(f"catalog entries must be EditSpec, got {type(spec).__name__}")
            if spec.name in self._specs:
                raise EditError(f"duplicate edit name {spec.name!r} in catalog")
            self._specs[spec.name] = spec

    # -- mapping-like access ---------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[EditSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> EditSpec:
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise UnknownEdit(str(name), self.names) from None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EditCatalog)
            and list(self) == list(other)
            and self.subject_kind == other.subject_kind
        )

    def __repr__(self) -> str:
        return f"EditCatalog({self.names})"

    # -- requests ------------------------------------------------------------------

    def validate_request(self, request: Mapping[str, object]) -> dict[str, float]:
        """Check ``{edit name: strength}``; return it with float strengths.

        Raises :class:`UnknownEdit` (naming the edit and the available ones) or
        :class:`StrengthOutOfRange` (naming the edit and its allowed range).
        """
        if not isinstance(request, Mapping):
            raise EditError(
                f"an edit request must map edit names to strengths, got {type(request).__name__}"
            )
        return {str(name): self[name].check_strength(s) for name, s in request.items()}

    def sensitive_edits(self, request: Mapping[str, object]) -> list[str]:
        """Names of the sensitive edits that ``request`` actually uses (strength != 0)."""
        checked = self.validate_request(request)
        return [n for n, s in checked.items() if self._specs[n].sensitive and s != 0.0]

    def defaults(self) -> dict[str, float]:
        return {s.name: s.default_strength for s in self}

    def apply(
        self,
        wplus: Tensor,
        request: Mapping[str, object],
        directions: Mapping[str, Tensor],
    ) -> Tensor:
        """Apply a (validated here) request to W+ codes (B, n_latent, style_dim)."""
        out = wplus
        for name, strength in self.validate_request(request).items():
            spec = self._specs[name]
            if spec.direction not in directions:
                raise InvalidDirection(
                    f"edit {name!r} uses direction {spec.direction!r}, which is not loaded"
                )
            out = apply_direction(out, directions[spec.direction], strength, spec.layers)
        return out

    def check_directions(
        self, directions: Mapping[str, Tensor], *, n_latent: int, style_dim: int
    ) -> None:
        """Every edit's direction exists, has its declared space and fits the model."""
        for spec in self:
            if spec.direction not in directions:
                raise InvalidDirection(
                    f"edit {spec.name!r} refers to direction {spec.direction!r}, which is "
                    f"not among the directions ({sorted(directions)})"
                )
            validate_direction(
                directions[spec.direction],
                style_dim=style_dim,
                n_latent=n_latent,
                space=spec.space,
                name=f"direction {spec.direction!r} of edit {spec.name!r}",
            )
            if spec.layers is not None and spec.layers[1] > n_latent:
                raise EditError(
                    f"edit {spec.name!r}: layer range {list(spec.layers)} exceeds the "
                    f"generator's {n_latent} W+ codes"
                )
            if spec.keep is not None:
                if spec.keep.direction not in directions:
                    raise InvalidDirection(
                        f"edit {spec.name!r}: keep.direction {spec.keep.direction!r} is not "
                        f"among the directions ({sorted(directions)})"
                    )
                validate_direction(
                    directions[spec.keep.direction],
                    style_dim=style_dim,
                    n_latent=n_latent,
                    space="w",
                    name=f"keep direction {spec.keep.direction!r} of edit {spec.name!r}",
                )
                if spec.keep.layers is not None and spec.keep.layers[1] > n_latent:
                    raise EditError(
                        f"edit {spec.name!r}: keep.layers {list(spec.keep.layers)} exceeds "
                        f"the generator's {n_latent} W+ codes"
                    )

    # -- JSON ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format_version": CATALOG_FORMAT_VERSION}
        if self.subject_kind:
            d["subject_kind"] = self.subject_kind
        d["edits"] = [s.to_dict() for s in self]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EditCatalog:
        if not isinstance(d, Mapping) or not isinstance(d.get("edits"), list):
            raise EditError("an edit catalog must be an object with an 'edits' list")
        version = d.get("format_version", CATALOG_FORMAT_VERSION)
        if version != CATALOG_FORMAT_VERSION:
            raise EditError(f"unsupported edit catalog format_version {version!r}")
        return cls(
            (EditSpec.from_dict(e) for e in d["edits"]), subject_kind=d.get("subject_kind", "")
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> EditCatalog:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EditError(f"edit catalog is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EditCatalog:
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise EditError(f"cannot read edit catalog {str(path)!r}: {exc}") from None
        return cls.from_json(text)
