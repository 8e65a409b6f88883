"""original -> latent -> outputs, read from the hashes the jobs app records in events."""

from __future__ import annotations


def lineage(events) -> dict:
    """The chain of hashes, each with the seq of the event that recorded it last."""
    chain = {"original": None, "latent": None, "outputs": {}, "model": None}
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        if payload.get("original_sha256") and chain["original"] is None:
            chain["original"] = {"sha256": payload["original_sha256"], "seq": event.seq}
        if payload.get("latent_sha256"):
            chain["latent"] = {"sha256": payload["latent_sha256"], "seq": event.seq}
        outputs = payload.get("outputs")
        if isinstance(outputs, dict):
            for name, sha in outputs.items():
                if isinstance(sha, str):
                    chain["outputs"][name] = {"sha256": sha, "seq": event.seq}
        for key in ("model_bundle", "model_version", "bundle_sha256"):
            if payload.get(key):
                chain["model"] = {"value": payload[key], "seq": event.seq}
    return chain
