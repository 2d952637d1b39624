"""End to end in Debian's Chromium (headless, Selenium + chromedriver): the UI opens the shared
bear frames, a click draws the object's mask (checked on a screenshot's pixels), Track fills
every frame, and the DAVIS export holds the object on every frame."""

import pytest
import torch

from seg.serving import ServerSettings, create_app
from seg.serving.launch import ThreadedServer
from tests.conftest import load_script


@pytest.fixture(scope='module')
def ui_tool():
    return load_script('tools/serving/ui_screenshot.py')


def test_click_track_export_in_chromium(ui_tool, make_engine, bear_dir, tmp_path):
    missing = ui_tool.browser_missing()
    if missing:
        pytest.skip(f'no headless browser here: {missing}; .ci/run installs chromium + '
                    'chromium-driver with apt-get where it can')
    torch.manual_seed(0)
    app = create_app(make_engine(), ServerSettings(allowed_dirs=[bear_dir.parent]))
    with ThreadedServer(app) as server:
        result = ui_tool.drive_ui(server.url, bear_dir.name, tmp_path / 'ui.png')
    assert result['mask_area'] > 0 and result['tinted_fraction'] >= 0.01
    assert result['tracked_frames'] == result['frames'] == 2
    assert result['export_pngs'] == ['00000.png', '00001.png']
    assert (tmp_path / 'ui.png').stat().st_size > 10_000
