"""Signing and reading C2PA manifests (c2pa-python). No Django here.

`sign_image` embeds a manifest with two actions — `c2pa.opened` of the original (the
parent ingredient) and `c2pa.edited` with IPTC's `compositeWithTrainedAlgorithmicMedia`
— and the platform's audit assertion. `read_image` validates a manifest against the
operator's trust anchors only (`trust.trust_anchors` replaces the SDK's built-in list)
and reports the validation state; only `Trusted` counts as made here.

Thumbnails are off: an output is its own preview and a thumbnail only adds bytes and
an image that outlives the original's erasure.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import c2pa

AUDIT_LABEL = "com.styleledger.audit"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
TRUSTED = "Trusted"


class ManifestError(ValueError):
    """The image could not be signed (unsupported format, bad key or certificate)."""


@dataclass(frozen=True)
class SigningMaterial:
    key_pem: bytes
    chain_pem: bytes
    tsa_url: str | None = None


@dataclass
class ManifestReport:
    """What a reader found: `present` (a manifest at all), `state` (Invalid/Valid/Trusted)."""

    present: bool
    state: str = ""
    trusted: bool = False
    audit: dict | None = None
    actions: list = field(default_factory=list)
    signer: str = ""
    failures: list[str] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict:
        return {
            "present": self.present,
            "state": self.state,
            "trusted": self.trusted,
            "signer": self.signer,
            "failures": self.failures,
            "error": self.error,
            "audit": self.audit,
        }


def mime_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ManifestError("only PNG, JPEG and WebP images carry manifests here")


def _context(*, anchors_pem: bytes | None = None) -> c2pa.Context:
    config: dict = {
        "builder": {"thumbnail": {"enabled": False}},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    }
    if anchors_pem is not None:
        config["trust"] = {"trust_anchors": anchors_pem.decode("ascii")}
        config["verify"].update({"verify_trust": True})
    return c2pa.Context.from_dict(config)


def build_definition(
    *,
    title: str,
    software: str,
    software_version: str,
    model_version: str,
    edits: list[dict],
    audit: dict,
) -> dict:
    agent = {"name": software, "version": software_version}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.opened",
                            "softwareAgent": agent,
                            "parameters": {"ingredientIds": ["original"]},
                        },
                        {
                            "action": "c2pa.edited",
                            "digitalSourceType": SOURCE_TYPE,
                            "softwareAgent": agent,
                            "description": "attribute edit in a StyleGAN2 latent space",
                            "parameters": {"model_version": model_version, "edits": edits},
                        },
                    ]
                },
            },
            {"label": AUDIT_LABEL, "data": audit},
        ],
    }


def sign_image(
    image: bytes,
    definition: dict,
    material: SigningMaterial,
    *,
    original: bytes,
    original_title: str = "original",
) -> bytes:
    """The image with `definition` signed and embedded; the original as parent ingredient."""
    mime = mime_of(image)
    try:
        with (
            _context() as context,
            c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(
                    c2pa.C2paSigningAlg.ES256,
                    material.chain_pem,
                    material.key_pem,
                    material.tsa_url.encode() if material.tsa_url else None,
                )
            ) as signer,
            c2pa.Builder(definition, context) as builder,
        ):
            ingredient = {"title": original_title, "relationship": "parentOf", "label": "original"}
            builder.add_ingredient(json.dumps(ingredient), mime_of(original), io.BytesIO(original))
            dest = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(image), dest)
    except c2pa.C2paError as exc:
        raise ManifestError(f"signing failed: {exc}") from exc
    return dest.getvalue()


def read_image(image: bytes, *, anchors_pem: bytes) -> ManifestReport:
    """Read and validate the active manifest against `anchors_pem` (and nothing else)."""
    try:
        mime = mime_of(image)
    except ManifestError as exc:
        return ManifestReport(present=False, error=str(exc))
    try:
        with (
            _context(anchors_pem=anchors_pem) as context,
            c2pa.Reader(mime, io.BytesIO(image), context=context) as reader,
        ):
            store = json.loads(reader.json())
            state = reader.get_validation_state() or ""
    except c2pa.C2paError as exc:
        text = str(exc)
        if (
            "ManifestNotFound" in type(exc).__name__
            or "no JUMBF" in text
            or "not found" in text.lower()
        ):
            return ManifestReport(present=False)
        return ManifestReport(present=True, state="Invalid", error=text)
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    report = ManifestReport(present=True, state=state, trusted=state == TRUSTED)
    report.signer = (active.get("signature_info") or {}).get("common_name", "")
    status = store.get("validation_results", {}).get("activeManifest", {})
    report.failures = [
        f"{item.get('code')}: {item.get('explanation', '')}" for item in status.get("failure", [])
    ]
    for assertion in active.get("assertions", []):
        if assertion.get("label") == AUDIT_LABEL:
            report.audit = assertion.get("data")
        elif assertion.get("label", "").startswith("c2pa.actions"):
            report.actions = assertion.get("data", {}).get("actions", [])
    return report
