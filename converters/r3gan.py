"""brownvc/R3GAN network snapshot pickles -> common format (architecture ``r3gan``).

Format facts (``training/training_loop.py`` and ``legacy.py`` upstream): a snapshot is a plain pickle of
``dict(G, D, G_ema, training_set_kwargs, cur_nimg, <phase>_opt_state...)``. The networks are ordinary
``torch.nn.Module`` objects pickled by reference (no NVIDIA persistence, no embedded source): the wrapper
``training.networks.Generator`` (``z_dim``, ``c_dim``, ``img_resolution``) around ``R3GAN.Networks.Generator``.
The first published checkpoints were written before the code was renamed (commit "rebranding", Nov 2024):
they name ``training.networks_baseline`` and ``BaselineGAN.*`` for the same classes, which upstream's
``legacy.py`` maps onto the new names; both layouts are accepted here. Every class is read as a data-only stub;
no config is stored, so widths, cardinality, block counts and the expansion factor come from tensor shapes
and the module tree, and ``GeneratorStage.DataType`` tells which stages upstream runs in bfloat16.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError
from zoo.imagenet import imagenet_class_names

from .base import Converted, SourceFormat, register_format, strict_map
from .nvidia import flatten_tree, module_state
from .safe_pickle import TORCH_TENSOR_GLOBALS, StubDict, restricted_load, stub_class

#: Module paths of the two published layouts: (wrapper module, network package).
LAYOUTS = {"current": ("training.networks", "R3GAN"), "pre-rename": ("training.networks_baseline", "BaselineGAN")}
_NET_CLASSES = {
    "Networks": ("Generator", "Discriminator", "GeneratorStage", "DiscriminatorStage", "GenerativeBasis",
                 "DiscriminativeBasis", "UpsampleLayer", "DownsampleLayer", "ResidualBlock", "Convolution"),
    "Resamplers": tuple(f"{kind}{d}{impl}" for kind in ("Interpolative", "Inplace") for d in ("Upsampler", "Downsampler")
                        for impl in ("CUDA", "Reference")),
    "FusedOperators": ("BiasedActivationCUDA", "BiasedActivationReference"),
}
_TORCH_MODULES = [("torch.nn.modules.container", "ModuleList"), ("torch.nn.modules.conv", "Conv2d"),
                  ("torch.nn.modules.linear", "Linear"), ("torch.nn.modules.activation", "LeakyReLU")]


def _allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = dict(TORCH_TENSOR_GLOBALS)
    for wrapper, package in LAYOUTS.values():
        for cls in ("Generator", "Discriminator"):
            allowed[(wrapper, cls)] = stub_class(wrapper, cls)
        for module, classes in _NET_CLASSES.items():
            for cls in classes:
                allowed[(f"{package}.{module}", cls)] = stub_class(f"{package}.{module}", cls)
    for module, cls in _TORCH_MODULES:
        allowed[(module, cls)] = stub_class(module, cls)
    for dtype in ("float32", "bfloat16", "float16"):
        allowed[("torch", dtype)] = getattr(torch, dtype)  # GeneratorStage.DataType values
    allowed[("dnnlib.util", "EasyDict")] = StubDict
    return allowed


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '_module', '?')}.{getattr(obj, '_qualname', type(obj).__name__)}"


def _children(obj: Any, where: str) -> dict[str, Any]:
    return dict(module_state(obj, where).get("_modules") or {})


def detect_layout(g: Any) -> str:
    """``current`` (``training.networks`` / ``R3GAN.*``) or ``pre-rename`` (``training.networks_baseline``)."""
    for layout, (wrapper, _) in LAYOUTS.items():
        if getattr(g, "_module", None) == wrapper and getattr(g, "_qualname", None) == "Generator":
            return layout
    raise ConversionError(f"G_ema is a {_qualname(g)}, not an R3GAN generator (expected training.networks.Generator "
                          "or training.networks_baseline.Generator)")


def infer_kwargs(g: Any, sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """Constructor arguments of :class:`~zoo.models.r3gan.R3GANGenerator` from shapes and the module tree."""
    wrapper = module_state(g, where)
    model = _children(g, where).get("Model")
    if model is None or getattr(model, "_qualname", None) != "Generator":
        raise ConversionError(f"{where}: G_ema has no Model (R3GAN.Networks.Generator) sub-module")
    stages = _children(_children(model, where).get("MainLayers"), where)
    n = len(stages)
    if n == 0:
        raise ConversionError(f"{where}: G_ema.Model.MainLayers is empty")
    widths, cards, blocks, bf16 = [], [], [], []
    expansion = None
    kernel = None
    for i in range(n):
        stage = stages[str(i)]
        dtype = module_state(stage, where).get("DataType", torch.float32)
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ConversionError(f"{where}: stage {i} has DataType {dtype!r}; expected float32 or bfloat16")
        if dtype != torch.float32:
            bf16.append(i)
        layers = _children(_children(stage, where)["Layers"], where)
        kinds = [getattr(layers[str(j)], "_qualname", "?") for j in range(len(layers))]
        first = "GenerativeBasis" if i == 0 else "UpsampleLayer"
        if kinds[0] != first or any(k != "ResidualBlock" for k in kinds[1:]):
            raise ConversionError(f"{where}: stage {i} holds {kinds}; expected {first} then ResidualBlocks")
        p = f"Model.MainLayers.{i}.Layers"
        if i == 0:
            width = int(sd[f"{p}.0.Basis"].shape[0])
        else:
            lin = sd.get(f"{p}.0.LinearLayer.Layer.weight")
            width = int(lin.shape[0]) if lin is not None else widths[-1]
            taps = sd.get(f"{p}.0.Resampler.Kernel")
            if taps is None or tuple(taps.shape) != (4, 4):
                raise ConversionError(f"{where}: stage {i} resampler kernel is {None if taps is None else list(taps.shape)};"
                                      " only the default [1, 2, 1] interpolative filter (4x4 kernel) is supported")
        nb = len(layers) - 1
        card = 1
        if nb:
            w1 = sd[f"{p}.1.LinearLayer1.Layer.weight"]
            w2 = sd[f"{p}.1.LinearLayer2.Layer.weight"]
            wide = int(w1.shape[0])
            if wide % width:
                raise ConversionError(f"{where}: stage {i} expands {width} -> {wide} channels (not a whole factor)")
            e = wide // width
            if expansion is not None and e != expansion:
                raise ConversionError(f"{where}: expansion factor differs between stages ({expansion} vs {e})")
            expansion = e
            card = wide // int(w2.shape[1])
            k = int(w2.shape[-1])
            if kernel is not None and k != kernel:
                raise ConversionError(f"{where}: kernel size differs between stages ({kernel} vs {k})")
            kernel = k
        widths.append(width)
        cards.append(card)
        blocks.append(nb)
    z_in = int(sd["Model.MainLayers.0.Layers.0.LinearLayer.weight"].shape[1])
    z_dim = int(wrapper.get("z_dim", z_in))
    c_dim = int(wrapper.get("c_dim", 0) or 0)
    embed = sd.get("Model.EmbeddingLayer.weight")
    if (embed is None) != (c_dim == 0):
        raise ConversionError(f"{where}: c_dim={c_dim} but the generator {'has' if embed is not None else 'lacks'} "
                              "an EmbeddingLayer")
    emb_dim = int(embed.shape[0]) if embed is not None else 0
    if z_dim + emb_dim != z_in:
        raise ConversionError(f"{where}: z_dim {z_dim} + condition embedding {emb_dim} != basis input {z_in}")
    res = int(wrapper.get("img_resolution", 4 * 2 ** (n - 1)))
    if res != 4 * 2 ** (n - 1):
        raise ConversionError(f"{where}: img_resolution {res} does not match {n} stages (4 * 2**{n - 1})")
    return dict(NoiseDimension=z_dim, WidthPerStage=widths, CardinalityPerStage=cards, BlocksPerStage=blocks,
                ExpansionFactor=expansion or 2, c_dim=c_dim, ConditionEmbeddingDimension=emb_dim,
                KernelSize=kernel or 3, ResamplingFilter=[1.0, 2.0, 1.0], bfloat16_stages=bf16)


_P = r"Model\.MainLayers\.\d+\.Layers"
R3GAN_TABLE: list[tuple[str, str]] = [
    (rf"({_P}\.0\.(Basis|LinearLayer\.weight))", r"\1"),
    (rf"({_P}\.0\.(LinearLayer\.Layer\.weight|Resampler\.Kernel))", r"\1"),
    (rf"({_P}\.\d+\.LinearLayer[123]\.Layer\.weight)", r"\1"),
    (rf"({_P}\.\d+\.NonLinearity[12]\.Bias)", r"\1"),
    (r"(Model\.AggregationLayer\.Layer\.weight)", r"\1"),
    (r"(Model\.EmbeddingLayer\.weight)", r"\1"),
]


def convert_snapshot(snapshot: Any, where: str = "snapshot") -> Converted:
    """Pure conversion of an unpickled snapshot dict (takes ``G_ema``)."""
    if not isinstance(snapshot, dict) or "G_ema" not in snapshot:
        keys = ", ".join(map(str, snapshot)) if isinstance(snapshot, dict) else type(snapshot).__name__
        raise ConversionError(f"{where}: expected an R3GAN snapshot dict with G_ema, got {keys}")
    g = snapshot["G_ema"]
    layout = detect_layout(g)
    sd = flatten_tree(g, where=where)
    kwargs = infer_kwargs(g, sd, where)
    tensors = strict_map(sd, R3GAN_TABLE, where=where)
    notes = []
    if kwargs["bfloat16_stages"]:
        notes.append(f"upstream runs stages {kwargs['bfloat16_stages']} in bfloat16; converted to float32 "
                     "(set G.emulate_bfloat16 = True for the upstream precision)")
    names = imagenet_class_names() if kwargs["c_dim"] == 1000 else None
    return Converted("r3gan", kwargs, {k: v.to(torch.float32) for k, v in tensors.items()}, class_names=names,
                     extra_config={"upstream_layout": layout}, notes=notes)


def convert_file(path: Path) -> Converted:
    with open(path, "rb") as f:
        head = f.read(65536)
    if b"torch_utils.persistence" in head:
        raise ConversionError(f"{path.name} is an NVIDIA persistence pickle (StyleGAN2/3 or StyleGAN-XL), not an "
                              "R3GAN snapshot; drop --format to auto-detect it")
    return convert_snapshot(restricted_load(path, _allowed(), source=path.name), where=path.name)


_MARKERS = re.compile(rb"(R3GAN|BaselineGAN)\.Networks")


def _sniff(path: Path, head: bytes) -> bool:
    return (path.is_file() and head[:1] == b"\x80" and b"torch_utils.persistence" not in head
            and bool(_MARKERS.search(head)))


register_format(SourceFormat(
    name="r3gan-pickle",
    description="brownvc/R3GAN network-snapshot .pkl (training.networks or pre-rename training.networks_baseline)",
    sniff=_sniff,
    convert=convert_file,
    priority=12,
))
