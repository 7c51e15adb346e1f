"""The studio in a real browser: system Chromium driven by Playwright against the app served on 127.0.0.1.

Every tab runs on the embedded default model and on a converted shared fixture (StyleGAN2-ADA, 64 px);
the images the page shows are fetched and compared pixel for pixel with the SDK's own results.
Screenshots of every tab land in the test's temporary folder (printed with ``-s``).
"""

from __future__ import annotations

import io
import os
import re
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import sdk
import zoo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEFAULT = "dcgan-digiface-64"
FIXTURE = ("sg2ada_uncond_64", "network-snapshot-000000.pkl")
INVERT_STEPS = 60
# A 60-step pixel-loss inversion of the model's own seed-5 image must reach this PSNR. Measured with
# sdk.invert on CPU: 29.6 dB (DCGAN default, z space) and 27.8 dB (StyleGAN2-ADA fixture, w space).
PSNR_MIN_DB = 24.0
TIMEOUT_MS = 60_000
# sdk.sample picks its backend and batch size per job ("auto"); they agree within float rounding, which can
# move a pixel by one level (see sdk.sampling.generate). Direct torch paths (edit, mix) are compared exactly.
SAMPLE_TOL = 1


def _need(module: str) -> None:
    if os.environ.get("GANZOO_EXPECT_INSTALLED") == "1":  # CI: a missing piece is a failure, not a skip
        __import__(module)
    else:
        pytest.importorskip(module)


_need("gradio")
_need("playwright.sync_api")
if not Path(CHROMIUM).is_file() and os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
    pytest.skip(f"no system Chromium at {CHROMIUM} (CI installs it with apt-get)", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("studio-screenshots")
    print(f"\nstudio screenshots: {d}")
    return d


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory):
    import sdk.studio

    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    port = _free_port()
    state = sdk.studio.StudioState()
    demo = sdk.studio.launch(DEFAULT, port=port, block=False, quiet=True, state=state)
    assert demo.local_url.startswith(f"http://127.0.0.1:{port}") and not demo.share and demo.share_url is None
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", state=state)
    finally:
        demo.close()
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module", params=["default", "fixture"])
def model(request, browser, studio, converted_fixture):
    """A page with the model loaded through the Models tab, plus the SDK's own copy of that generator."""
    spec = DEFAULT if request.param == "default" else str(converted_fixture(*FIXTURE))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(studio.url)
    page.locator("#model-info").get_by_text("weights sha256").wait_for()  # the start model, shown on open
    _fill(page, "#model-spec textarea", spec)
    page.locator("#model-load").click()
    page.locator("#current-model").get_by_text(spec).wait_for()
    G = zoo.load(spec, quiet=True)
    page.locator("#model-info").get_by_text(type(G).__name__).wait_for()
    try:
        yield SimpleNamespace(key=request.param, spec=spec, page=page, G=G, state=studio.state)
    finally:
        page.close()


# --- helpers ----------------------------------------------------------------------------------------------

def _tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.get_by_role("tabpanel").filter(visible=True).first.wait_for()
    page.wait_for_timeout(200)  # let a tab shown for the first time mount its fields before typing


def _fill(page: Page, selector: str, value: str) -> None:
    """Type into a field and make sure it keeps the value (a tab's fields mount when it is first shown)."""
    field = page.locator(selector).first
    for _ in range(20):
        field.fill(value)
        page.wait_for_timeout(100)
        if field.input_value() == value:
            return
    raise AssertionError(f"{selector} does not keep the value {value!r}")


def _shown_image(page: Page, selector: str, old_src: str | None = None) -> tuple[Image.Image, str]:
    """The image an ``gr.Image`` shows, fetched over HTTP like the browser does (waits for a new one)."""
    img = page.locator(f"{selector} img").first
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        if img.count():
            src = img.get_attribute("src")
            if src and src != old_src:
                break
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector}: no new image shown")
        time.sleep(0.1)
    body = page.request.get(src).body()
    return Image.open(io.BytesIO(body)).convert("RGB"), src


def _src(page: Page, selector: str) -> str | None:
    img = page.locator(f"{selector} img")
    return img.first.get_attribute("src") if img.count() else None


def _download(page: Page, selector: str, name: str) -> bytes:
    """The bytes behind a ``gr.File``'s download link for ``name``."""
    link = page.locator(f'{selector} a[download="{name}"]').first
    link.wait_for()
    return page.request.get(link.get_attribute("href")).body()


def _upload(page: Page, selector: str, path: Path) -> None:
    """Put ``path`` into a ``gr.File`` (clearing what it holds) and wait until the page lists it."""
    clear = page.locator(f'{selector} button[aria-label="Clear"]')
    if clear.count():
        clear.first.click()
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))
    page.locator(f'{selector} [aria-label="{path.name}"]').first.wait_for()


def _assert_same(got: Image.Image, want: Image.Image, what: str, tol: int = 0) -> None:
    want = want.convert("RGB")
    assert got.size == want.size, f"{what}: page shows {got.size}, SDK gives {want.size}"
    diff = (torch.tensor(list(got.tobytes())) - torch.tensor(list(want.tobytes()))).abs()
    assert int(diff.max()) <= tol, f"{what}: page image differs from the SDK's (max |diff| {int(diff.max())})"
    assert float((diff > 0).float().mean()) < 0.01, f"{what}: {float((diff > 0).float().mean()):.1%} pixels differ"


def _expect_error(page: Page, fragment: str) -> str:
    """A readable one-line message in the page (a toast), not a traceback; closes the toasts."""
    toast = page.locator(".toast-body").filter(has_text=fragment).first
    toast.wait_for()
    text = toast.inner_text()
    assert "Traceback" not in page.content() and 'File "' not in text
    for close in page.locator(".toast-close").all():
        if close.is_visible():
            close.click()
    return text


def _shot(page: Page, shots: Path, model, tab: str) -> None:
    """A full-page screenshot of ``tab`` for ``model`` in the test's screenshot folder."""
    path = shots / f"{model.key}-{tab}.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as im:
        assert im.width >= 1000 and im.height >= 500


# --- the tabs -------------------------------------------------------------------------------------------

def test_models_tab(model, shots):
    page = model.page
    info = page.locator("#model-info").inner_text()
    assert f"resolution {model.G.img_resolution}" in info
    assert model.G.model_info["weights_sha256"][:16] in info
    if model.key == "default":
        assert "Licence note" in info  # DigiFace-1M: non-commercial training data
        _fill(page, "#registry-search textarea", "stylegan3-t")
        table = page.locator("#registry-table")
        table.get_by_text("stylegan3-t-ffhq-1024").first.wait_for()
        page.wait_for_function("() => !document.querySelector('#registry-table').innerText"
                               ".includes('dcgan-digiface-64')")
    else:
        assert "style-based: W+ layers 0..9" in info
    _shot(page, shots, model, "models")


def test_sample_grid_is_the_sdk_grid_and_truncation_moves_it(model, shots):
    page = model.page
    _tab(page, "Sample")
    _fill(page, "#sample-seeds textarea", "0-3")
    page.locator("#sample-run").click()
    got, src = _shown_image(page, "#sample-grid")
    _assert_same(got, sdk.make_grid(sdk.sample(model.G, [0, 1, 2, 3])), "seeds 0-3", SAMPLE_TOL)
    assert page.locator("#sample-command textarea").input_value() == \
        f"ganzoo sample {model.spec} --seeds 0-3 --grid grid.png"
    _assert_same(Image.open(io.BytesIO(_download(page, "#sample-file", "grid.png"))).convert("RGB"), got,
                 "downloaded grid.png")

    _fill(page, "#sample-psi input[type=range]", "0.5")
    moved, _ = _shown_image(page, "#sample-grid", old_src=src)
    assert moved.tobytes() != got.tobytes()
    _assert_same(moved, sdk.make_grid(sdk.sample(model.G, [0, 1, 2, 3], truncation_psi=0.5)), "psi 0.5", SAMPLE_TOL)
    assert "--trunc 0.5" in page.locator("#sample-command textarea").input_value()
    _shot(page, shots, model, "sample")


def test_mix_tab(model, shots):
    from sdk.latent.edit import style_mix_grid

    page = model.page
    _tab(page, "Mix")
    page.locator("#mix-run").click()
    if model.key == "default":  # a DCGAN has no W space: a clear message instead of a grid
        _expect_error(page, "style mixing needs a style-based generator")
    else:
        got, _ = _shown_image(page, "#mix-grid")
        _assert_same(got, style_mix_grid(model.G, [0, 1, 2], [3, 4, 5], [0, 1, 2, 3]), "style mix")
    _shot(page, shots, model, "mix")


def test_edit_tab_with_a_sefa_direction(model, shots):
    from sdk.latent.edit import result_space, synthesize

    page = model.page
    _tab(page, "Edit")
    _fill(page, "#edit-seed input", "2")
    page.locator("#edit-run").click()
    start, src = _shown_image(page, "#edit-image")  # strength 0: the seed's own image
    _assert_same(start, sdk.sample(model.G, [2])[0], "strength 0", SAMPLE_TOL)

    _fill(page, "#edit-strength input[type=range]", "3")
    got, _ = _shown_image(page, "#edit-image", old_src=src)
    d = sdk.directions.sefa(model.G)
    z = sdk.seeds_to_z(model.G, [2])
    edited = sdk.edit(model.G, z, d, 3.0, component=0, space="z")
    want = sdk.to_pil(synthesize(model.G, edited, result_space(d, "z")))[0]
    _assert_same(got, want, "SeFa component 0, strength 3")
    assert got.tobytes() != start.tobytes()
    info = page.locator("#edit-info").inner_text()
    assert "sefa" in info and re.search(r"\d+ ms", info)

    page.locator("#edit-export").click()
    anim = Image.open(io.BytesIO(_download(page, "#edit-animation", "edit.webp")))
    assert anim.format == "WEBP" and anim.n_frames > 2
    _shot(page, shots, model, "edit")


def test_edit_an_uploaded_latent_with_ganspace(model, tmp_path):
    from sdk.latent.edit import result_space, synthesize

    page = model.page
    G = model.G
    z = sdk.seeds_to_z(G, [3])
    if model.key == "fixture":
        with torch.no_grad():
            latent, space = G.mapping(z, None, truncation_psi=0.8)[:, 0], "w"
    else:
        latent, space = z * 0.8, "z"
    path = sdk.save_latent(tmp_path / "start.safetensors", latent, space=space, G=G)
    _tab(page, "Edit")
    page.locator("#edit-source").get_by_label("uploaded latent").check()
    _upload(page, "#edit-latent", path)
    page.locator("#edit-method input").click()
    page.get_by_role("option", name="GANSpace").click()
    _fill(page, "#edit-component input", "1")
    old = _src(page, "#edit-image")
    _fill(page, "#edit-strength input[type=range]", "2")
    got, _ = _shown_image(page, "#edit-image", old_src=old)
    d = sdk.directions.ganspace(G, n_samples=2000, components=16)
    edited = sdk.edit(G, latent, d, 2.0, component=1, space=space)
    _assert_same(got, sdk.to_pil(synthesize(G, edited, result_space(d, space)))[0], "GANSpace 1 on an uploaded latent")
    assert "ganspace" in page.locator("#edit-info").inner_text()
    page.locator("#edit-source").get_by_label("seed").check()
    page.locator("#edit-method input").click()
    page.get_by_role("option", name="SeFa").click()


def test_invert_tab_reaches_psnr_and_hands_the_latent_to_edit(model, shots, tmp_path):
    page = model.page
    photo = tmp_path / "photo.png"
    sdk.sample(model.G, [5])[0].save(photo)
    _tab(page, "Invert")
    _upload(page, "#invert-upload", photo)
    _fill(page, "#invert-steps input[type=range]", str(INVERT_STEPS))
    page.locator("#invert-loss").get_by_label("pixel").check()
    page.locator("#invert-run").click()
    metrics = page.locator("#invert-metrics").get_by_text("PSNR")
    metrics.wait_for()
    text = metrics.inner_text()
    psnr = float(re.search(r"PSNR ([\d.]+) dB", text).group(1))
    assert psnr > PSNR_MIN_DB, text
    recon, _ = _shown_image(page, "#invert-recon")
    assert recon.size == (model.G.img_resolution,) * 2
    latent_file = tmp_path / "latent.safetensors"
    latent_file.write_bytes(_download(page, "#invert-latent", "latent.safetensors"))
    lat = sdk.load_latent(latent_file, model.G)  # checks it belongs to this generator
    assert lat.space == ("w" if model.key == "fixture" else "z")
    _shot(page, shots, model, "invert")

    page.locator("#invert-to-edit").click()
    page.locator("#edit-source").get_by_label("inverted latent").wait_for()
    assert page.locator("#edit-source").get_by_label("inverted latent").is_checked()
    old = _src(page, "#edit-image")
    page.locator("#edit-run").click()
    edited, _ = _shown_image(page, "#edit-image", old_src=old)
    assert edited.size == recon.size


def test_errors_are_readable_messages(model, tmp_path):
    page = model.page
    _tab(page, "Models")
    _fill(page, "#model-spec textarea", "no-such-model")
    page.locator("#model-load").click()
    _expect_error(page, "unknown model 'no-such-model'")
    assert model.spec in page.locator("#current-model").inner_text()  # the loaded model stays

    _tab(page, "Sample")
    _fill(page, "#sample-seeds textarea", "0-x")
    page.locator("#sample-run").click()
    _expect_error(page, "seeds: bad seed list")

    bad = tmp_path / "broken.png"
    bad.write_text("this is not a picture\n")
    _tab(page, "Invert")
    _upload(page, "#invert-upload", bad)
    page.locator("#invert-run").click()
    msg = _expect_error(page, "cannot read image broken.png")
    assert "not an image format" in msg and str(tmp_path) not in msg


def test_stop_cancels_an_inversion_and_frees_the_model(model, tmp_path):
    page = model.page
    photo = tmp_path / "photo.png"
    sdk.sample(model.G, [9])[0].save(photo)
    _tab(page, "Invert")
    _upload(page, "#invert-upload", photo)
    _fill(page, "#invert-steps input[type=range]", "2000")  # far longer than the test: Stop must end it
    page.locator("#invert-run").click()
    page.locator("#invert-metrics").get_by_text(re.compile(r"step \d+/2000")).wait_for()  # live progress
    assert model.state.queue.busy(model.spec)
    page.locator("#invert-stop").click()
    t0 = time.monotonic()
    while model.state.queue.busy(model.spec):  # the optimisation stops at its next step
        assert time.monotonic() - t0 < 5, "the inversion still holds the model after Stop"
        time.sleep(0.05)
    _tab(page, "Sample")  # the model's queue is free again: sampling answers at once
    _fill(page, "#sample-seeds textarea", "11")
    old = _src(page, "#sample-grid")
    page.locator("#sample-run").click()
    got, _ = _shown_image(page, "#sample-grid", old_src=old)
    psi = float(page.locator("#sample-psi input[type=number]").input_value())
    _assert_same(got, sdk.make_grid(sdk.sample(model.G, [11], truncation_psi=psi)), "seed 11 after cancel", SAMPLE_TOL)
    _tab(page, "Invert")
    assert "PSNR" not in page.locator("#invert-metrics").inner_text()


def test_models_tab_converts_an_uploaded_checkpoint(browser, studio, converted_fixture):
    """An upstream pickle uploaded in the page is converted (safely) and loaded: the same weights as the CLI's."""
    from conftest import fixture_dir

    G = zoo.load(converted_fixture(*FIXTURE), quiet=True)
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(studio.url)
        page.locator("#model-info").get_by_text("weights sha256").wait_for()
        page.locator("#model-upload input[type=file]").set_input_files(str(fixture_dir(FIXTURE[0]) / FIXTURE[1]))
        page.locator("#current-model").get_by_text(FIXTURE[1]).wait_for()
        assert "StyleGAN2Generator" in page.locator("#model-info").inner_text()
        _tab(page, "Sample")
        _fill(page, "#sample-seeds textarea", "0-3")
        page.locator("#sample-run").click()
        got, _ = _shown_image(page, "#sample-grid")
        _assert_same(got, sdk.make_grid(sdk.sample(G, [0, 1, 2, 3])), "uploaded checkpoint, seeds 0-3", SAMPLE_TOL)
    finally:
        page.close()
