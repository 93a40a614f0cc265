"""``--report DIR``: index.html opens offline in headless Chromium and every image it shows has loaded."""

from __future__ import annotations

import pytest
from support_activities import colour_model_xml, write_script_video  # noqa: F401  (fixture)
from support_eval import DAY_RULES, edge_har, make_day, write_config
from support_web import CHROMIUM, HeadlessChromium

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

IMAGES_LOADED = ("(() => { const images = [...document.images]; return images.length > 0 && "
                 "images.every(i => i.complete) && images.map(i => [i.getAttribute('src'), i.naturalWidth, "
                 "i.naturalHeight]); })()")


def open_report(index):
    with HeadlessChromium() as browser:
        browser.open(index.as_uri())
        images = browser.wait_for(IMAGES_LOADED)
        text = browser.evaluate("document.body.innerText")
    return {src: (width, height) for src, width, height in images}, text


def test_the_day_report_shows_its_timelines_and_curves(colour_model_xml, compiled_cache, tmp_path):
    folder = make_day(tmp_path / "day")
    config = write_config(tmp_path / "cfg.yaml", colour_model_xml, compiled_cache, rules=DAY_RULES)
    result = edge_har("eval", folder, "-c", config, "--report", tmp_path / "report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    images, text = open_report(tmp_path / "report" / "index.html")
    expected = {f"{kind}-{activity}.png" for kind in ("timeline", "pr") for activity in
                ("handwash", "food_prep", "smoking")}
    assert set(images) == expected
    assert all(width > 100 and height > 100 for width, height in images.values())
    assert "wash-3s" in text and "segments, matched at each temporal IoU" in text


def test_the_clips_report_shows_the_confusion_matrix(colour_model_xml, compiled_cache, tmp_path):
    data = tmp_path / "clips"
    for name, colour in (("handwash", "red"), ("smoking", "green")):
        (data / name).mkdir(parents=True)
        write_script_video(data / name / "1.mp4", [(colour, 0.64)])
    write_script_video(data / "smoking" / "2.mp4", [("red", 0.64)])
    config = write_config(tmp_path / "cfg.yaml", colour_model_xml, compiled_cache)
    result = edge_har("eval", data, "-c", config, "--report", tmp_path / "report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    images, text = open_report(tmp_path / "report" / "index.html")
    assert set(images) == {"confusion.png"}
    assert "top-1 66.7%" in text
