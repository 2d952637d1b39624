"""Drive the browser UI in headless Chromium (Debian's chromium + chromium-driver, Selenium):
open a frame folder, click the object, check on a screenshot that its mask is drawn, track,
export. Writes the screenshot (docs/serving_ui.png by default) and prints a JSON summary.

    python tools/serving/ui_screenshot.py [--out docs/serving_ui.png] [--folder DIR] [--click X Y]

The server is started in this process (uvicorn on a free loopback port) with the tiny model
(random weights, seeded; or --config / --weights) unless --url is given.
``drive_ui`` is what tests/test_serving/test_browser_ui.py runs.
"""
import argparse
import io
import json
import shutil
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Dict

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
TINY = 'configs/fastsam2/model_fastsam2_tiny.py'
OBJECT_RGB = (128, 0, 0)  # DAVIS palette colour of object 1, as the UI draws it


def browser_missing() -> str:
    """Why the browser test cannot run here ('' when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed (pip install -r requirements.txt)'
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f'{path} is missing (apt-get install chromium chromium-driver)'
    return ''


def make_driver(width: int = 1280, height: int = 800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                f'--window-size={width},{height}', '--force-device-scale-factor=1'):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _wait(driver, condition: str, timeout: float = 60.0) -> Any:
    """Poll a JS expression until it is truthy; fail with the UI's status line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f'return !!({condition});')
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent;")
    raise TimeoutError(f'UI: waited {timeout:.0f} s for `{condition}`; status: {status!r}')


def _canvas_pixels(driver) -> np.ndarray:
    """The canvas as it appears on a screenshot of the page (RGB, at the canvas's display size)."""
    from selenium.webdriver.common.by import By
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert('RGB')
    r = driver.find_element(By.ID, 'view').rect
    box = tuple(int(round(v)) for v in (r['x'], r['y'], r['x'] + r['width'], r['y'] + r['height']))
    return np.asarray(shot.crop(box)).astype(np.int16)


def drive_ui(url: str, folder: str, shot: Path, click_xy=(0.5, 0.55)) -> Dict[str, Any]:
    """Open ``folder`` (a path under the server's --allow-dir), click at ``click_xy`` (fractions
    of the canvas), check the overlay on the screenshot, track, export. Returns what it measured;
    raises AssertionError when the UI does not do its job."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    driver = make_driver()
    try:
        driver.get(url + '/ui/')
        driver.find_element(By.ID, 'path').send_keys(folder)
        driver.find_element(By.ID, 'open-path').click()
        _wait(driver, "document.body.dataset.state === 'ready' && window.fastsam2.currentImage")
        before = _canvas_pixels(driver)
        canvas = driver.find_element(By.ID, 'view')
        r = canvas.rect
        ActionChains(driver).move_to_element_with_offset(
            canvas, int(r['width'] * (click_xy[0] - 0.5)), int(r['height'] * (click_xy[1] - 0.5))
        ).click().perform()
        _wait(driver, "document.body.dataset.state === 'segmented' && window.fastsam2.pending === 0")
        after = _canvas_pixels(driver)
        if after.shape != before.shape:
            raise AssertionError(f'canvas size changed {before.shape} -> {after.shape}')
        # overlay pixels: blended towards the object's colour (red up, green and blue down)
        diff = after - before
        tinted = (diff[..., 0] > 8) & (diff[..., 1] < -8) & (diff[..., 2] < -8)
        tinted_fraction = float(tinted.mean())
        area = driver.execute_script('const m = window.fastsam2.masks[0] || {};'
                                     'return m[1] ? m[1].area : 0;')
        if not area or tinted_fraction < 0.01:
            raise AssertionError(f'no mask drawn: mask area {area}, tinted pixels {tinted_fraction:.4f}')
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))

        num_frames = driver.execute_script('return window.fastsam2.numFrames;')
        driver.find_element(By.ID, 'track').click()
        _wait(driver, "document.body.dataset.state === 'tracked'")
        tracked = driver.execute_script('return Object.keys(window.fastsam2.masks).length;')
        if tracked != num_frames:
            raise AssertionError(f'tracking drew masks on {tracked} of {num_frames} frames')
        driver.find_element(By.ID, 'frame').send_keys('\ue014')  # arrow right: next frame
        _wait(driver, 'window.fastsam2.frame === 1')

        href = driver.find_element(By.ID, 'export-davis').get_attribute('href')
        with urllib.request.urlopen(href, timeout=60) as resp:
            archive = zipfile.ZipFile(io.BytesIO(resp.read()))
        pngs = sorted(archive.namelist())
        ids = [np.unique(np.asarray(Image.open(io.BytesIO(archive.read(n))))).tolist() for n in pngs]
        if len(pngs) != num_frames or not all(1 in i for i in ids):
            raise AssertionError(f'DAVIS export: {pngs} with ids {ids}, expected {num_frames} '
                                 'frames with object 1')
        return dict(mask_area=area, tinted_fraction=tinted_fraction, frames=num_frames,
                    tracked_frames=tracked, export_pngs=pngs, screenshot=str(shot))
    finally:
        driver.quit()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=str(REPO_ROOT / 'docs/serving_ui.png'))
    p.add_argument('--folder', default=str(REPO_ROOT.parent / 'shared/data/davis2017_sample/JPEGImages/'
                                                             '480p/bear'))
    p.add_argument('--url', default=None, help='a running server (its --allow-dir must hold --folder)')
    p.add_argument('--config', default=str(REPO_ROOT / TINY))
    p.add_argument('--weights', default=None)
    p.add_argument('--image-size', type=int, default=256)
    p.add_argument('--click', type=float, nargs=2, default=(0.5, 0.55), metavar=('X', 'Y'),
                   help='where to click, as fractions of the frame (default 0.5 0.55)')
    args = p.parse_args()
    if not all(0 <= v <= 1 for v in args.click):
        sys.exit(f'--click takes fractions of the frame in [0, 1], got {args.click}')
    missing = browser_missing()
    if missing:
        sys.exit(missing)
    if args.url:
        print(json.dumps(drive_ui(args.url, args.folder, Path(args.out), args.click), indent=2))
        return
    import torch

    from seg.serving import ModelEngine, ServerSettings, create_app
    from seg.serving.launch import ThreadedServer
    folder = Path(args.folder).resolve()
    torch.manual_seed(0)  # the random init (no --weights) is the same every run
    engine = ModelEngine.from_config(args.config, args.weights, 'cpu', args.image_size)
    app = create_app(engine, ServerSettings(allowed_dirs=[folder.parent]))
    with ThreadedServer(app) as server:
        print(json.dumps(drive_ui(server.url, folder.name, Path(args.out), args.click), indent=2))


if __name__ == '__main__':
    main()
