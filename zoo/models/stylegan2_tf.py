"""Registry entries: the original TensorFlow StyleGAN2 config-f releases (NVlabs/stylegan2).

They run on the StyleGAN2 architecture (``zoo.models.stylegan2``); the TF pickles are converted by the
``tf-stylegan2-pickle`` source format. URLs: NVlabs/stylegan2 README ("Pre-trained networks").
FIDs: StyleGAN2 paper (Karras et al., CVPR 2020), Table 1, configuration F.
"""

from __future__ import annotations

from ..registry import ModelEntry, register_models

_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks"
_PAPER = "Analyzing and Improving the Image Quality of StyleGAN (Karras et al., CVPR 2020)"


def _tf(key: str, dataset: str, res: int, fid: float, notes: str = "") -> ModelEntry:
    url = f"{_BASE}/stylegan2-{key}-config-f.pkl"
    return ModelEntry(name=f"stylegan2-{key}-config-f", family="stylegan2", architecture="stylegan2",
                      source_format="tf-stylegan2-pickle", url=url, dataset=dataset, resolution=res,
                      license="nvidia-source-code-license", paper=_PAPER, fid=fid, source_file=url.rsplit("/", 1)[-1],
                      notes=("Original TensorFlow release (config F), converted from the TF pickle. " + notes).strip(),
                      tags=("tensorflow-original",))


register_models(
    _tf("ffhq", "FFHQ", 1024, 2.84),
    _tf("car", "LSUN Car", 512, 2.32,
        notes="Trained on 512x384 images padded to 512x512: outputs are 512x512 frames whose content occupies "
              "the central 512x384 band (rows 64-447); crop it for the upstream aspect ratio."),
    _tf("cat", "LSUN Cat", 256, 6.93),
    _tf("church", "LSUN Church", 256, 3.86),
    _tf("horse", "LSUN Horse", 256, 3.43),
)
