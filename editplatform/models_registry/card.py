"""The model card: what a registered bundle is, built only from its verified manifest and catalog.

Everything on the card comes from the bundle's bytes (the manifest commits to every
file), so the card cannot say more than the model's own record. Fields a manifest does
not declare are shown as "not declared" rather than guessed. The keys read:

- ``encoder_arch``, ``configs``: the architecture (names from inversion.registry);
- ``provenance.data`` (text or object) and ``provenance.data_hashes`` /
  ``provenance.data_sha256`` (or an adapted bundle's ``provenance.adaptation.data_sha256``):
  the training data and its hashes;
- ``intended_use`` (top level or in provenance; else ``provenance.notes``);
- ``domain``: the declared domain (issue 12), absent on bundles that declare none;
- ``metrics``: the evaluation figures (reconstruction table, per-edit measures);
- ``catalog.json``: the edits with their sensitivity; the reason is the catalog's
  ``provenance.catalog_sensitivity`` rule (or a per-edit entry in its ``marked``) with
  the measured figure it was decided on;
- ``licences`` (top level or in provenance): ``{file name: licence}`` for each weight file;
- ``parent_version`` (top level or in provenance, or ``provenance.parent.version``):
  the version an adapted or extended model was derived from.
"""

from __future__ import annotations

from typing import Any

from inversion import registry

NOT_DECLARED = "not declared"
WEIGHT_SUFFIX = ".safetensors"


def _first(*values: Any) -> Any:
    for value in values:
        if value not in (None, "", {}, []):
            return value
    return None


def parent_version(manifest: dict[str, Any]) -> str:
    prov = manifest.get("provenance") or {}
    parent = prov.get("parent") if isinstance(prov.get("parent"), dict) else {}
    value = _first(
        manifest.get("parent_version"), prov.get("parent_version"), parent.get("version")
    )
    return str(value) if value else ""


def _architecture(manifest: dict[str, Any]) -> dict[str, Any]:
    name = manifest.get("encoder_arch", registry.DEFAULT_ARCH)
    arch = registry.ARCHITECTURES.get(name)
    generator = manifest.get("configs", {}).get("generator", {})
    return {
        "encoder_arch": name,
        "label": arch.label if arch else name,
        "fuser": bool(arch and arch.fuser),
        "generator_size": generator.get("size"),
        "style_dim": generator.get("style_dim"),
        "configs": manifest.get("configs", {}),
    }


def _training_data(prov: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": _first(prov.get("data")) or NOT_DECLARED,
        "hashes": _first(
            prov.get("data_hashes"),
            prov.get("data_sha256"),
            (prov.get("adaptation") or {}).get("data_sha256"),  # `inversion train adapt`
        )
        or {},
        "commands": prov.get("commands") or [],
    }


def _evaluation(metrics: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for key, row in (metrics.get("reconstruction") or {}).items():
        if isinstance(row, dict):
            rows.append(
                {
                    "method": key,
                    "label": row.get("label", key),
                    "psnr": row.get("psnr"),
                    "ssim": row.get("ssim"),
                    "n": row.get("n"),
                    "ms_per_image": row.get("ms_per_image"),
                }
            )
    return {
        "data": metrics.get("evaluation_data") or NOT_DECLARED,
        "reconstruction": rows,
        "ci_reconstruction": metrics.get("ci_reconstruction") or {},
        "extra": {k: v for k, v in metrics.items() if k not in ("reconstruction", "edits")},
    }


def sensitivity_reason(spec: dict[str, Any], prov: dict[str, Any]) -> str:
    """Why the edit is (or is not) sensitive: the catalog's rule and the measured figure."""
    rule_block = prov.get("catalog_sensitivity") or {}
    marked = rule_block.get("marked") or {}
    if spec["name"] in marked:
        return str(marked[spec["name"]])
    rule = rule_block.get("rule") or ""
    measured = spec.get("measured") or {}
    figure = ""
    if isinstance(measured.get("class_kept"), int | float):
        figure = f"class kept for {measured['class_kept']:.0%} at the default strength"
    parts = [p for p in (figure, f"rule: {rule}" if rule else "") if p]
    if not parts:
        return "declared sensitive in the catalog" if spec.get("sensitive") else NOT_DECLARED
    return "; ".join(parts)


def _edits(catalog: dict[str, Any], prov: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for spec in catalog.get("edits", []):
        measured = spec.get("measured") or {}
        out.append(
            {
                "name": spec["name"],
                "label": spec.get("display_name") or spec["name"].replace("_", " ").capitalize(),
                "description": spec.get("description", ""),
                "sensitive": bool(spec.get("sensitive")),
                "reason": sensitivity_reason(spec, prov),
                "range": [spec.get("min_strength"), spec.get("max_strength")],
                "default_strength": spec.get("default_strength"),
                "success": measured.get("success"),
                "measured": measured,
            }
        )
    return out


def _files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    prov = manifest.get("provenance") or {}
    licences = _first(manifest.get("licences"), prov.get("licences")) or {}
    rows = []
    for name, entry in sorted((manifest.get("files") or {}).items()):
        rows.append(
            {
                "name": name,
                "sha256": entry.get("sha256"),
                "size": entry.get("size"),
                "weights": name.endswith(WEIGHT_SUFFIX),
                "licence": licences.get(name) if isinstance(licences, dict) else None,
            }
        )
        if rows[-1]["licence"] is None:
            rows[-1]["licence"] = NOT_DECLARED
    return rows


def build_card(version: str, manifest: dict[str, Any], catalog: dict[str, Any]) -> dict[str, Any]:
    """The card of a verified bundle (plain JSON; stored with the registered version)."""
    prov = manifest.get("provenance") or {}
    return {
        "version": version,
        "format_version": manifest.get("format_version"),
        "architecture": _architecture(manifest),
        "training_data": _training_data(prov),
        "intended_use": _first(
            manifest.get("intended_use"), prov.get("intended_use"), prov.get("notes")
        )
        or NOT_DECLARED,
        "domain": manifest.get("domain"),
        "evaluation": _evaluation(manifest.get("metrics") or {}),
        "edits": _edits(catalog, prov),
        "subject_kind": catalog.get("subject_kind", ""),
        "files": _files(manifest),
        "parent_version": parent_version(manifest),
    }
