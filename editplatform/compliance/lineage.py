"""original -> latent -> outputs, read from the hashes the jobs app records in events."""

from __future__ import annotations


def lineage(events) -> dict:
    """The chain of hashes, each with the seq of the event that recorded it last.

    Only string hashes count: a payload is whatever its writer put there, and a list or
    an object where a hash belongs must not break the reviewer's page.
    """
    chain = {"original": None, "latent": None, "outputs": {}, "model": None}
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        if _text(payload.get("original_sha256")) and chain["original"] is None:
            chain["original"] = {"sha256": payload["original_sha256"], "seq": event.seq}
        if _text(payload.get("latent_sha256")):
            chain["latent"] = {"sha256": payload["latent_sha256"], "seq": event.seq}
        outputs = payload.get("outputs")
        if isinstance(outputs, dict):
            for name, sha in outputs.items():
                if isinstance(sha, str):
                    chain["outputs"][name] = {"sha256": sha, "seq": event.seq}
        for key in ("model_bundle", "model_version", "bundle_sha256"):
            if _text(payload.get(key)):
                chain["model"] = {"value": payload[key], "seq": event.seq}
    return chain


def _text(value) -> bool:
    return isinstance(value, str) and bool(value)
