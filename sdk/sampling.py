"""Seeds -> latents -> images, and the truncation trick as a function on latents."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .classes import resolve_class
from .images import to_pil
from .truncated_noise import biggan_seed_to_z

if TYPE_CHECKING:
    from .backends import BackendChoice
    from .backends.runners import Runner


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """``np.random.RandomState(seed).randn(1, z_dim)`` as float32 ``[1, z_dim]`` (NVIDIA ``gen_images.py``)."""
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed {seed} out of range: seeds are integers in [0, 2**32)")
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, z_dim)).to(torch.float32)


def seeds_to_z(G: Any, seeds: Sequence[int], truncation_psi: float = 1.0) -> torch.Tensor:
    """Stacked per-seed latents using the generator's own seed convention (``G.z_convention``)."""
    convention = getattr(G, "z_convention", "nvidia")
    fn = Z_CONVENTIONS.get(convention)
    if fn is None:
        raise ValueError(f"unknown z convention {convention!r}")
    return torch.cat([fn(int(s), G.z_dim, truncation_psi) for s in seeds], dim=0)


def _nvidia_z(seed: int, z_dim: int, psi: float) -> torch.Tensor:
    return seed_to_z(seed, z_dim)


def _torch_z(seed: int, z_dim: int, psi: float) -> torch.Tensor:
    """``torch.manual_seed(seed); torch.randn(1, z_dim)`` on CPU (rosinality/stylegan2-pytorch scripts),
    drawn from a private generator so the global RNG state is left alone."""
    if not 0 <= int(seed) < 2 ** 64:
        raise ValueError(f"seed {seed} out of range: seeds are integers in [0, 2**64)")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(1, z_dim, generator=g)


#: Seed -> z functions by name; families with another convention add theirs here.
Z_CONVENTIONS = {"nvidia": _nvidia_z, "torch": _torch_z}
Z_CONVENTIONS["biggan"] = biggan_seed_to_z


def _studiogan_z(seed: int, z_dim: int, psi: float) -> torch.Tensor:
    """StudioGAN's sampler for one seed (``fix_seed``; labels drawn first; psi == 1: randn, else truncnorm(-psi,
    psi)); see :func:`zoo.models.studiogan.sample_zy`."""
    from zoo.models.studiogan import studiogan_seed_to_z

    return studiogan_seed_to_z(seed, z_dim, psi)


Z_CONVENTIONS["studiogan"] = _studiogan_z


def truncate(ws: torch.Tensor, G: Any, psi: float = 0.7, cutoff: int | None = None) -> torch.Tensor:
    """Truncation trick on W/W+ latents: lerp ``ws[:, :cutoff]`` towards ``G``'s ``w_avg``.

    ``ws`` is ``[N, num_ws, w_dim]`` (or ``[N, w_dim]``, treated as one layer). ``psi=1`` is the
    identity and ``psi=0`` gives ``w_avg``.
    """
    from zoo.models.stylegan2 import truncate_ws

    w_avg = getattr(G, "w_avg", None)
    if w_avg is None:
        raise ValueError("truncate() needs a style-based generator with w_avg")
    if ws.ndim == 2:
        return truncate_ws(ws.unsqueeze(1), w_avg, psi, cutoff).squeeze(1)
    return truncate_ws(ws, w_avg, psi, cutoff)


def _parse_device(G: Any) -> torch.device:
    try:
        return next(G.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def default_noise_mode(G: Any) -> str:
    """The noise mode sampling uses when none is given: the family's ``default_noise_mode``, else ``"const"``.

    Families that store no noise (FastGAN, Projected GAN) default to ``"none"``, so a seed gives one image.
    """
    return str(getattr(G, "default_noise_mode", None) or "const")


def is_exported(G: Any) -> bool:
    """Whether ``G`` is an exported ONNX/ORT file (:class:`sdk.OnnxGenerator`): it runs in onnxruntime itself."""
    from .export.onnx_generator import OnnxGenerator

    return isinstance(G, OnnxGenerator)


def resolve_backend(G: Any, backend: "str | BackendChoice" = "auto", batch_size: int | None = None, *,
                    noise_mode: str = "const", truncation_cutoff: int | None = None, quiet: bool = True,
                    precision: str = "fp32", **forward_kwargs: Any) -> "tuple[Runner, BackendChoice]":
    """The runner and choice sampling uses: :func:`sdk.backends.resolve` for a zoo generator, a choice made
    beforehand (a :class:`~sdk.backends.BackendChoice`) as it is, and for an exported file (:func:`is_exported`)
    onnxruntime on the provider the file's session uses, whatever ``backend`` of auto / onnx / torch is asked."""
    from .backends import BackendChoice, BackendError, make_runner, resolve
    from .backends.tune import DEFAULT_BATCH

    exported = is_exported(G)
    if isinstance(backend, BackendChoice):  # a choice made beforehand (e.g. by the CLI, to report it)
        runner = make_runner(G, "torch" if exported else backend.backend, noise_mode, truncation_cutoff,
                             precision=backend.precision, **forward_kwargs)
        return runner, backend
    if not exported:
        return resolve(G, backend, batch_size, noise_mode=noise_mode, truncation_cutoff=truncation_cutoff,
                       quiet=quiet, precision=precision, **forward_kwargs)
    if backend not in ("auto", "onnx", "torch"):  # torch: "G itself", as callers that pass any generator say
        raise BackendError(f"{G.path.name} is an exported file: it runs in onnxruntime (backend onnx or auto), "
                           f"not {backend}")
    # the OnnxGenerator is the callable: the torch runner calls it, and it calls onnxruntime
    runner = make_runner(G, "torch", noise_mode, truncation_cutoff, precision=precision, **forward_kwargs)
    what = f"onnxruntime runs {G.path.name} on {G.provider_in_use}"
    if batch_size is None and backend == "auto":
        return runner, BackendChoice("onnx", None, "adaptive", f"{what}; batch size measured while sampling")
    return runner, BackendChoice("onnx", batch_size or DEFAULT_BATCH, "forced", what)


def generate_batches(G: Any, seeds: Sequence[int], truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                     class_idx: int | str | None = None, noise_mode: str | None = None,
                     batch_size: int | None = None, quiet: bool = True, translate: Sequence[float] | None = None,
                     rotate: float | None = None, backend: "str | BackendChoice" = "auto", precision: str = "fp32",
                     **forward_kwargs: Any) -> Iterator[tuple[list[int], torch.Tensor]]:
    """:func:`generate` one batch at a time: yields ``(batch_seeds, images [n, C, H, W])`` as each batch is made,
    so a caller can write it out and let it go (memory stays flat; an interrupted job keeps what it wrote).

    A generator: nothing runs (and no argument is checked) until the first batch is asked for. The progress bar
    counts a batch when it is yielded; an adaptive batch size is cached once the last batch has been taken.
    """
    if noise_mode is None:
        noise_mode = default_noise_mode(G)
    if translate is not None or rotate is not None:
        from .transform import input_transform, inverse_transform

        if "transform" in getattr(G, "extra_defaults", {}):  # an exported StyleGAN3: the transform is an input
            yield from generate_batches(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                        class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size,
                                        quiet=quiet, backend=backend, transform=inverse_transform(translate, rotate),
                                        **forward_kwargs)
            return
        with input_transform(G, translate, rotate):
            yield from generate_batches(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                        class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size,
                                        quiet=quiet, backend="torch" if backend == "auto" else backend,
                                        **forward_kwargs)
        return
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds given")
    if batch_size is not None and batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if not math.isfinite(float(truncation_psi)):
        raise ValueError(f"truncation psi must be a finite number, got {truncation_psi}")
    device = _parse_device(G)
    class_idx = resolve_class(G, class_idx)  # names ("golden retriever") -> indices
    from .backends import BatchPlan

    runner, choice = resolve_backend(G, backend, batch_size, noise_mode=noise_mode,
                                     truncation_cutoff=truncation_cutoff, quiet=quiet, precision=precision,
                                     **forward_kwargs)
    plan = BatchPlan(choice, len(seeds))
    with tqdm(total=len(seeds), desc=f"sampling ({choice.backend})", unit="img", disable=quiet) as bar:
        i = 0
        while i < len(seeds):
            chunk = seeds[i:i + plan.next_size(len(seeds) - i)]
            t0 = time.perf_counter()
            with torch.no_grad():  # not held across the yield: the caller's grad mode stays its own
                z = seeds_to_z(G, chunk, truncation_psi).to(device)
                c = G.make_c(class_idx, len(chunk), device=device)
                with plan.measuring(G, len(chunk)):
                    img = runner(z, c, truncation_psi)
                img = img.to(torch.float32).cpu()
            plan.record(len(chunk), time.perf_counter() - t0)
            bar.update(len(chunk))
            i += len(chunk)
            yield chunk, img
    plan.finish(G)


def generate(G: Any, seeds: Sequence[int], truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
             class_idx: int | str | None = None, noise_mode: str | None = None, batch_size: int | None = None,
             quiet: bool = True, translate: Sequence[float] | None = None, rotate: float | None = None,
             backend: "str | BackendChoice" = "auto", precision: str = "fp32",
             **forward_kwargs: Any) -> torch.Tensor:
    """Images for ``seeds`` as one float tensor ``[N, C, H, W]`` (nominal [-1, 1]); :func:`generate_batches`
    gives them batch by batch.

    ``backend``: ``"auto"`` (the fastest measured for this model and machine, see :mod:`sdk.backends`),
    ``"torch"``, ``"compiled"`` or ``"onnx"``; ``batch_size=None`` lets the choice pick it. Every backend
    and batch size gives each seed the same image (within the fp32 export tolerance for the graph backends).
    An exported file (:class:`sdk.OnnxGenerator`) runs in onnxruntime (see :func:`resolve_backend`).
    ``precision="bf16"`` (CPUs with AVX512-BF16 / AMX) or ``"fp16"`` (CUDA) is an opt-in faster, lossy path;
    ``sdk.backends.precision_quality`` measures its PSNR against fp32.
    ``translate=(tx, ty)`` / ``rotate=degrees`` (StyleGAN3 only) transform the output like upstream
    ``gen_images.py``; the model's own transform is restored afterwards. ``noise_mode=None`` uses
    :func:`default_noise_mode`.
    """
    batches = generate_batches(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                               class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size, quiet=quiet,
                               translate=translate, rotate=rotate, backend=backend, precision=precision,
                               **forward_kwargs)
    return torch.cat([img for _, img in batches], dim=0)


def sample_batches(G: Any, seeds: Sequence[int] = (0,), truncation_psi: float = 1.0,
                   truncation_cutoff: int | None = None, class_idx: int | str | None = None,
                   noise_mode: str | None = None, batch_size: int | None = None, quiet: bool = True,
                   translate: Sequence[float] | None = None, rotate: float | None = None,
                   backend: "str | BackendChoice" = "auto", precision: str = "fp32",
                   **forward_kwargs: Any) -> Iterator[tuple[list[int], list[Image.Image]]]:
    """:func:`sample` one batch at a time: yields ``(batch_seeds, PIL images)`` as each batch is made
    (see :func:`generate_batches`)."""
    for chunk, img in generate_batches(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                       class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size,
                                       quiet=quiet, translate=translate, rotate=rotate, backend=backend,
                                       precision=precision, **forward_kwargs):
        yield chunk, to_pil(img)


def sample(G: Any, seeds: Sequence[int] = (0,), truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
           class_idx: int | str | None = None, noise_mode: str | None = None, batch_size: int | None = None,
           quiet: bool = True, translate: Sequence[float] | None = None, rotate: float | None = None,
           backend: "str | BackendChoice" = "auto", precision: str = "fp32",
           **forward_kwargs: Any) -> list[Image.Image]:
    """One PIL image per seed; the same seed gives the same image whatever ``batch_size`` or ``backend``."""
    return [im for _, ims in sample_batches(G, seeds, truncation_psi=truncation_psi,
                                            truncation_cutoff=truncation_cutoff, class_idx=class_idx,
                                            noise_mode=noise_mode, batch_size=batch_size, quiet=quiet,
                                            translate=translate, rotate=rotate, backend=backend,
                                            precision=precision, **forward_kwargs)
            for im in ims]


MAX_SEEDS = 1 << 16


def parse_indices(spec: str) -> list[int]:
    """``"0-3,6"`` -> ``[0, 1, 2, 3, 6]``: non-negative integers and ranges (e.g. W+ layers); ValueError if bad."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo or lo < 0:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                v = int(part)
                if v < 0:
                    raise ValueError
                out.append(v)
        except ValueError:
            raise ValueError(f"{spec!r}: use numbers and ranges like 0-3,6") from None
    if not out:
        raise ValueError(f"{spec!r}: nothing listed")
    return out


def parse_seeds(spec: str) -> list[int]:
    """``"0-7,12"`` -> ``[0, 1, ..., 7, 12]``."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                if len(seeds) + hi - lo + 1 > MAX_SEEDS:
                    raise OverflowError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"bad seed list {spec!r}: use numbers and ranges like 0-7,12") from None
        except OverflowError:
            raise ValueError(f"seed list {spec!r} has more than {MAX_SEEDS} seeds; split the job") from None
    if not seeds:
        raise ValueError(f"bad seed list {spec!r}: no seeds")
    for s in seeds:
        if not 0 <= s < 2 ** 32:
            raise ValueError(f"seed {s} out of range [0, 2**32)")
    return seeds
