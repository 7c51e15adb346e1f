"""pSp / e4e / ReStyle encoder checkpoints -> the ``psp-encoder`` common format (encoder + decoder in one folder).

Format facts (the training Coaches of eladrich/pixel2style2pixel, omertov/encoder4editing and
yuval-alaluf/restyle-encoder, ``Coach.__get_save_dict``): ``torch.save`` of a dict with ``state_dict``
(``encoder.*`` and ``decoder.*`` = a rosinality StyleGAN2 ``Generator``), ``opts`` (the training options as a
plain dict) and ``latent_avg`` (``[n_styles, w_dim]``, ``[1, w_dim]`` or ``[w_dim]``); e4e and ReStyle-e4e files
may add ``global_step``, ``optimizer``, ``best_val_loss`` and discriminator entries, which are ignored.

The family is read from the file's content, never its name (Coaches save ``best_model.pt``):
``opts['encoder_type']`` names the head, the input conv's channel count says whether it is a ReStyle
(6-channel, iterative) encoder, the tensor names which backbone (IR-SE50 ``input_layer`` / ResNet-34 ``conv1``)
and which head (FPN ``latlayer*``, ``styles`` only, ``output_layer_2``, single ``linear``) it has. Every width
comes from tensor shapes (forks and small test models change upstream's hard-coded 512).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError
from zoo.models.encoders import HEADS, IR50_UNITS, RESNET34_UNITS, PSPEncoder

from .base import Converted, SourceFormat, register_format, strict_map
from .rosinality import NAMESPACE, convert_checkpoint
from .safe_pickle import is_torch_zip, torch_safe_load

#: IR-ResNet unit counts by depth (upstream ``get_blocks``); 50 is the one every released encoder uses.
IR_UNITS = {24: IR50_UNITS, 49: (3, 13, 30, 3), 50: (3, 8, 36, 3)}
#: Top-level entries the Coaches save beside the weights (training state; not needed for inference).
TRAINING_EXTRAS = ("global_step", "optimizer", "best_val_loss", "discriminator_state_dict",
                   "discriminator_optimizer_state_dict", "latent_avg", "opts", "state_dict")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict, read with ``torch.load(weights_only=True)`` (older files: ``opts`` as a Namespace stub)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        ckpt = torch_safe_load(path, stubs=[NAMESPACE], source=path.name)
    except Exception as e:  # noqa: BLE001 - torch raises many types on junk
        raise ConversionError(f"{path.name} is corrupt or not a torch checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ConversionError(f"{path.name}: expected a pSp/e4e/ReStyle checkpoint dict with 'state_dict'")
    return ckpt


def _opts(ckpt: dict[str, Any]) -> dict[str, Any]:
    opts = ckpt.get("opts", {})
    state = getattr(opts, "state", None)
    if isinstance(state, dict):  # argparse.Namespace stub
        opts = state
    return dict(opts) if isinstance(opts, dict) else {}


def _split(sd: dict[str, Any], where: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    enc, dec, other = {}, {}, []
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise ConversionError(f"{where}: state_dict entry {k} is not a tensor")
        if k.startswith("encoder."):
            enc[k[len("encoder."):]] = v
        elif k.startswith("decoder."):
            dec[k[len("decoder."):]] = v
        else:
            other.append(k)
    if other:
        raise ConversionError(f"{where}: state_dict has entries outside encoder./decoder. "
                              f"({', '.join(other[:4])}); not a pSp/e4e/ReStyle checkpoint")
    if not enc or not dec:
        raise ConversionError(f"{where}: state_dict needs both encoder.* and decoder.* tensors "
                              f"(found {len(enc)} and {len(dec)})")
    return enc, dec


def _backbone(enc: dict[str, torch.Tensor], where: str) -> tuple[str, int, list[int], list[int]]:
    """(backbone, input_nc, stage widths, units per stage) from the encoder tensors."""
    n_units = len({int(m.group(1)) for k in enc if (m := re.match(r"body\.(\d+)\.", k))})
    if "input_layer.0.weight" in enc:
        backbone = "ir_se" if "body.0.res_layer.5.fc1.weight" in enc else "ir"
        input_nc = int(enc["input_layer.0.weight"].shape[1])
        if n_units not in IR_UNITS:
            raise ConversionError(f"{where}: IR backbone with {n_units} units; known depths: 50, 100, 152")
        units = list(IR_UNITS[n_units])
        depth_key = "body.{}.res_layer.1.weight"
    elif "conv1.weight" in enc:
        backbone, input_nc = "resnet34", int(enc["conv1.weight"].shape[1])
        if n_units != sum(RESNET34_UNITS):
            raise ConversionError(f"{where}: ResNet backbone with {n_units} blocks; only ResNet-34 (16) is known")
        units, depth_key = list(RESNET34_UNITS), "body.{}.conv1.weight"
    else:
        raise ConversionError(f"{where}: encoder has neither input_layer.0 (IR-SE50) nor conv1 (ResNet-34)")
    starts = [sum(units[:k]) for k in range(4)]
    widths = [int(enc[depth_key.format(s)].shape[0]) for s in starts]
    return backbone, input_nc, widths, units


def _head(enc: dict[str, torch.Tensor]) -> str:
    if "latlayer1.weight" in enc:
        return "fpn"
    if "styles.0.linear.weight" in enc:
        return "backbone"
    if "output_layer_2.3.weight" in enc:
        return "wplus"
    return "w"


def _encoder_type(opts: dict[str, Any], head: str, backbone: str, input_nc: int, where: str) -> str:
    given = opts.get("encoder_type")
    if given is None:  # pSp's oldest files: GradualStyleEncoder was the only option
        given = {"fpn": "GradualStyleEncoder", "w": "BackboneEncoderUsingLastLayerIntoW",
                 "wplus": "BackboneEncoderUsingLastLayerIntoWPlus"}.get(head)
        if given is None:
            given = "BackboneEncoder" if input_nc == 6 else ""
    if given not in HEADS:
        raise ConversionError(f"{where}: unknown encoder_type {given!r}; supported: {', '.join(HEADS)}")
    if HEADS[given][0] != head:
        raise ConversionError(f"{where}: opts say encoder_type {given} but the tensors hold a {head!r} head")
    if given.startswith("ResNet") != (backbone == "resnet34"):
        raise ConversionError(f"{where}: encoder_type {given} does not match the {backbone} backbone tensors")
    return given


def _family(opts: dict[str, Any], encoder_type: str, input_nc: int) -> str:
    progressive = HEADS[encoder_type][1]
    if input_nc == 6 and encoder_type not in ("GradualStyleEncoder",) or "n_iters_per_batch" in opts:
        return "restyle-e4e" if progressive else "restyle-psp"
    if progressive or "stylegan_size" in opts:
        return "e4e"
    return "psp"


def convert_encoder_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> Converted:
    """Pure conversion of a loaded pSp/e4e/ReStyle checkpoint dict."""
    unknown = [k for k in ckpt if k not in TRAINING_EXTRAS and not str(k).startswith("discriminator")]
    if unknown:
        raise ConversionError(f"{where}: unexpected top-level entries {', '.join(map(str, unknown[:4]))}")
    opts = _opts(ckpt)
    enc, dec = _split(ckpt["state_dict"], where)
    backbone, input_nc, widths, units = _backbone(enc, where)
    head = _head(enc)
    encoder_type = _encoder_type(opts, head, backbone, input_nc, where)
    family = _family(opts, encoder_type, input_nc)

    latent_avg = ckpt.get("latent_avg")
    w_dim = int(dec["style.1.weight"].shape[1]) if "style.1.weight" in dec else None
    if w_dim is None:
        raise ConversionError(f"{where}: decoder has no style.1.weight; not a rosinality StyleGAN2 decoder")
    if isinstance(latent_avg, torch.Tensor):
        if latent_avg.numel() % w_dim:
            raise ConversionError(f"{where}: latent_avg {list(latent_avg.shape)} does not fit w_dim {w_dim}")
        latent_avg = latent_avg.detach().to(torch.float32).reshape(-1, w_dim)
    notes = []
    # The decoder's truncation centre: the mean of the encoder's start latent (rows are equal copies of the
    # mean w in released files).
    dec_ckpt: dict[str, Any] = {"g_ema": dec}
    if latent_avg is not None:
        dec_ckpt["latent_avg"] = latent_avg.mean(0)
    g = convert_checkpoint(dec_ckpt, where=f"{where}: decoder")
    gen_kwargs = dict(g.init_kwargs)
    with torch.device("meta"):
        from zoo.models.stylegan2 import StyleGAN2Generator
        num_ws = StyleGAN2Generator(**gen_kwargs).num_ws
    if latent_avg is None:
        latent_avg = g.tensors["mapping.w_avg"].reshape(1, w_dim).clone()
        notes.append("no latent_avg in the checkpoint: the decoder's mapping mean stands in for it")
    if latent_avg.shape[0] not in (1, num_ws):
        raise ConversionError(f"{where}: latent_avg has {latent_avg.shape[0]} rows; expected 1 or {num_ws}")
    n_styles = num_ws
    if head in ("fpn", "backbone"):
        n_styles = len({int(m.group(1)) for k in enc if (m := re.match(r"styles\.(\d+)\.", k))})
    if n_styles != num_ws:
        raise ConversionError(f"{where}: encoder predicts {n_styles} styles but the decoder takes {num_ws} "
                              f"(resolution {gen_kwargs['img_resolution']})")
    start_avg = True if family.startswith("restyle") else bool(opts.get("start_from_latent_avg", True))
    kwargs: dict[str, Any] = dict(
        encoder_type=encoder_type, family=family, backbone=backbone, input_nc=input_nc, widths=widths,
        units=units, n_styles=n_styles, latent_avg_rows=int(latent_avg.shape[0]), generator_kwargs=gen_kwargs,
        start_from_latent_avg=start_avg,
        default_n_iters=int(opts.get("n_iters_per_batch", 5)) if family.startswith("restyle") else 1,
        dataset_type=str(opts.get("dataset_type", ""))[:64])
    with torch.device("meta"):
        expected = PSPEncoder(**kwargs).encoder.state_dict()
    enc_tensors = strict_map(enc, [(re.escape(k), k) for k in expected], where=f"{where}: encoder key")
    missing = sorted(set(expected) - set(enc_tensors))
    if missing:
        raise ConversionError(f"{where}: encoder lacks {len(missing)} tensor(s) for {encoder_type}: "
                              f"{', '.join(missing[:6])}")
    tensors = {f"encoder.{k}": (v.to(torch.float32) if v.is_floating_point() else v) for k, v in enc_tensors.items()}
    tensors.update({f"generator.{k}": v for k, v in g.tensors.items()})
    tensors["latent_avg"] = latent_avg.contiguous()
    notes = [f"{family} encoder ({encoder_type}, {backbone} backbone, {input_nc}-channel input) with its "
             "rosinality StyleGAN2 decoder"] + g.notes + notes
    extra = {"upstream_codebase": {"e4e": "omertov/encoder4editing", "psp": "eladrich/pixel2style2pixel"}
             .get(family, "yuval-alaluf/restyle-encoder"), "encoder": {"family": family, "type": encoder_type}}
    return Converted("psp-encoder", kwargs, tensors, extra_config=extra, notes=notes)


def convert_file(path: Path) -> Converted:
    return convert_encoder_checkpoint(read_checkpoint(path), where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    if not path.is_file() or not is_torch_zip(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not names:
            return False
        with z.open(names[0]) as f:
            data = f.read(1 << 20)
    return b"state_dict" in data and b"opts" in data and b"encoder." in data and b"decoder." in data


register_format(SourceFormat(
    name="psp-encoder-pt",
    description="pSp / e4e / ReStyle encoder checkpoint .pt (state_dict with encoder.* + decoder.*, opts, latent_avg)",
    sniff=_sniff,
    convert=convert_file,
    priority=20,
))
