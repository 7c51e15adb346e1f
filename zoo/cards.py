"""Model cards: ``cards/model_card.md.j2`` + ``cards/data/<name>.json``, rendered with huggingface_hub."""

from __future__ import annotations

import json
from typing import Any, Mapping

from huggingface_hub import ModelCard, ModelCardData

from .registry import ModelEntry, NON_COMMERCIAL_LICENSES, get_entry, is_registered

TEMPLATE = "model_card.md.j2"
# Hub licence identifiers for our registry licence names ("other" + a name when the Hub has none).
HUB_LICENSES = {"mit": "mit", "apache-2.0": "apache-2.0", "cc-by-nc-4.0": "cc-by-nc-4.0",
                "cc-by-4.0": "cc-by-4.0", "bsd-3-clause": "bsd-3-clause"}


def card_data(name: str) -> dict[str, Any]:
    """The per-model card data file (empty when a model has none)."""
    from cards import cards_dir

    path = cards_dir() / "data" / f"{name}.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _card_metadata(entry: ModelEntry | None, config: Mapping[str, Any], extra: Mapping[str, Any]) -> ModelCardData:
    license_id = entry.license if entry else str(extra.get("license", "other"))
    hub_license = HUB_LICENSES.get(license_id, "other")
    tags = ["ganzoo", "gan", config.get("architecture", "")]
    if entry:
        tags += [entry.family, *entry.tags]
    kwargs: dict[str, Any] = dict(library_name="ganzoo", license=hub_license, tags=sorted({t for t in tags if t}),
                                  pipeline_tag="unconditional-image-generation")
    if hub_license == "other":
        kwargs["license_name"] = license_id
    datasets = extra.get("datasets")
    if datasets:
        kwargs["datasets"] = list(datasets)
    return ModelCardData(**kwargs)


def render_card(config: Mapping[str, Any] | None = None, model_name: str | None = None) -> str:
    """Render a model card for a converted ``config`` and/or a registry entry ``model_name``."""
    entry = get_entry(model_name) if model_name and is_registered(model_name) else None
    extra = card_data(model_name) if model_name else {}
    config = dict(config or {})
    if not config and entry is None:
        raise ValueError("render_card needs a config or a registered model name")
    prov = config.get("provenance", {}) or {}
    license_id = entry.license if entry else extra.get("license", "unknown")
    license_note = extra.get("license_note") or (entry.license_note if entry else "") or \
        NON_COMMERCIAL_LICENSES.get(license_id, "")
    title = extra.get("title") or model_name or config.get("model_name") or "ganzoo model"
    sha = prov.get("source_sha256") if isinstance(prov.get("source_sha256"), str) else (entry.sha256 if entry else None)
    ctx = dict(
        card_data=_card_metadata(entry, config, extra).to_yaml(),
        title=title,
        summary=extra.get("summary", ""),
        architecture=config.get("architecture") or (entry.architecture if entry else ""),
        resolution=config.get("img_resolution") or (entry.resolution if entry else "?"),
        img_channels=config.get("img_channels", extra.get("img_channels", 3)),
        z_dim=config.get("z_dim", "?"), w_dim=config.get("w_dim", 0), num_ws=config.get("num_ws", 0),
        c_dim=config.get("c_dim", entry.num_classes if entry else 0),
        class_names=config.get("class_names") or (list(entry.class_names) if entry and entry.class_names else None),
        dataset=entry.dataset if entry else extra.get("dataset", ""),
        paper=entry.paper if entry else extra.get("paper", ""),
        fid=(entry.fid if entry else None) or extra.get("fid"),
        url=entry.url if entry else extra.get("url", ""),
        source_sha256=sha,
        license=license_id,
        license_note=license_note,
        load_name=model_name or "path/to/this/folder",
        source_format=prov.get("source_format"), source_file=prov.get("source_file"),
        converter_version=prov.get("converter_version"),
        parity=extra.get("parity", ""),
        conversion=extra.get("conversion", ""),
        notes=extra.get("notes") or (entry.notes if entry else "") or str(config.get("card_notes") or ""),
    )
    from cards import cards_dir

    template = (cards_dir() / TEMPLATE).read_text(encoding="utf-8")
    # from_template re-renders card_data itself; we pass the YAML text through our own placeholder.
    card = ModelCard.from_template(_card_metadata(entry, config, extra), template_str=template,
                                   **{k: v for k, v in ctx.items() if k != "card_data"})
    return str(card)
