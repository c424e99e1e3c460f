"""Image collection and reading, label maps, COCO records, REST JSON: no server needed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfsuite.clients.coco import detections_from_outputs, image_id_for
from tfsuite.clients.images import ImageReader, collect_images, draw_boxes, parse_resize
from tfsuite.clients.labels import coco_label_map, index_label_map, load_label_map
from tfsuite.clients.outputs import DetectionWriter
from tfsuite.clients.rest_json import decode_predict_body, encode_predict_body
from tfsuite.clients.specs import SignatureSpec, TensorSpec
from tfsuite.errors import UsageError


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for name, (h, w) in {"a.jpg": (40, 60), "b.png": (30, 20), "sub/c.png": (10, 10)}.items():
        assert cv2.imwrite(str(d / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (d / "notes.md").write_text("not an image")
    return d


def test_collect_dirs_globs_lists_and_files(image_dir: Path, tmp_path: Path) -> None:
    from_dir = collect_images([str(image_dir)])
    assert [p.name for p in from_dir] == ["a.jpg", "b.png", "c.png"]
    assert [p.name for p in collect_images([str(image_dir / "*.png")])] == ["b.png"]
    lst = tmp_path / "frames.lst"
    lst.write_text(f"# frames\n{image_dir / 'a.jpg'}\nimgs/b.png\n\n")
    assert [p.name for p in collect_images([str(lst)])] == ["a.jpg", "b.png"]
    with pytest.raises(UsageError, match="no such image.*missing.jpg"):
        collect_images([str(image_dir / "a.jpg"), str(tmp_path / "missing.jpg")])


def test_reader_keeps_order_resizes_and_reports_unreadable(image_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    paths = [image_dir / "a.jpg", bad, image_dir / "b.png"]
    with ImageReader(paths, resize=(16, 8), keep_original=True, prefetch=2) as reader:
        items = list(reader)
    assert [i.index for i in items] == [0, 1, 2]
    assert items[0].pixels.shape == (8, 16, 3) and items[0].original_size == (60, 40)
    assert items[0].original.shape == (40, 60, 3)
    assert items[1].pixels is None and items[1].error == "not a readable image"
    # RGB order: OpenCV decodes BGR, the reader flips it.
    bgr = cv2.imread(str(image_dir / "b.png"))
    with ImageReader([image_dir / "b.png"], resize=None) as reader:
        (only,) = list(reader)
    np.testing.assert_array_equal(only.pixels, bgr[:, :, ::-1])


def test_reader_scopes_opencv_threads(image_dir: Path) -> None:
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        with ImageReader([image_dir / "a.jpg"], resize=None) as outer:
            assert cv2.getNumThreads() == 1
            with ImageReader([image_dir / "a.jpg"], resize=None):
                pass
            assert cv2.getNumThreads() == 1  # still open: the outer reader keeps it
            list(outer)
        assert cv2.getNumThreads() == 3  # restored once the last reader closed
        outer.close()  # idempotent: does not release twice
        with ImageReader([image_dir / "a.jpg"], resize=None, opencv_threads=None):
            assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_draw_never_overwrites_an_input_image(image_dir: Path, tmp_path: Path) -> None:
    paths = collect_images([str(image_dir)])
    with pytest.raises(UsageError, match="--draw would overwrite the input image"):
        DetectionWriter(paths, coco_label_map(), 0.5, draw_dir=image_dir)
    DetectionWriter(paths, coco_label_map(), 0.5, draw_dir=tmp_path / "drawn")  # elsewhere: fine


def test_parse_resize() -> None:
    assert parse_resize("300x200") == (300, 200) and parse_resize("keep") is None
    with pytest.raises(UsageError, match="WxH"):
        parse_resize("300")


def test_label_maps(tmp_path: Path) -> None:
    assert coco_label_map()[1] == "person" and coco_label_map()[90] == "toothbrush"
    assert coco_label_map()[1234] == "id_1234" and index_label_map()[7] == "class_7"
    pbtxt = tmp_path / "map.pbtxt"
    pbtxt.write_text(
        'item {\n  id: 1\n  name: "/m/01g317"\n  display_name: "person"\n}\n'
        "item { id: 3 name: 'car' }\n"
    )
    m = load_label_map(pbtxt)
    assert m[1] == "person" and m[3] == "car"
    js = tmp_path / "map.json"
    js.write_text(json.dumps([{"id": 5, "name": "kite"}]))
    assert load_label_map(js)[5] == "kite"
    txt = tmp_path / "labels.txt"
    txt.write_text("tench\ngoldfish\n")
    assert load_label_map(txt, first_id=0)[1] == "goldfish"
    broken = tmp_path / "bad.pbtxt"
    broken.write_text("nothing here")
    with pytest.raises(UsageError, match="does not parse"):
        load_label_map(broken)


def test_detections_to_pixels_and_coco(tmp_path: Path) -> None:
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0, 0, 0, 0]], dtype=np.float32)
    scores = np.array([0.9, 0.4, 0.0], dtype=np.float32)
    classes = np.array([1.0, 3.0, 0.0], dtype=np.float32)
    dets = detections_from_outputs(boxes, scores, classes, 2.0, 200, 100, coco_label_map(), 0.3)
    assert [d.label for d in dets] == ["person", "car"]
    x1, y1, x2, y2 = dets[0].box
    assert (x1, y1, x2, y2) == pytest.approx((40.0, 10.0, 120.0, 50.0), abs=1e-4)
    assert dets[0].describe() == "person at [40,10,120,50] 0.900"
    rec = dets[0].coco(7)
    assert rec["bbox"] == pytest.approx([40.0, 10.0, 80.0, 40.0]) and rec["category_id"] == 1
    assert image_id_for(Path("000000397133.jpg"), 3) == 397133
    assert image_id_for(Path("cat.jpg"), 3) == 3
    drawn = draw_boxes(np.zeros((100, 200, 3), np.uint8), [(dets[0].box, "person 0.90", 1)])
    assert drawn.any() and drawn.shape == (100, 200, 3)


def test_rest_json_formats_and_b64() -> None:
    sig = SignatureSpec(
        "serving_default",
        "tensorflow/serving/predict",
        inputs={},
        outputs={
            "y": TensorSpec("y", "float32", (None, 2)),
            "s": TensorSpec("s", "string", (None,)),
        },
    )
    strings = np.array([b"\x00\xff", b"ok"], dtype=object)
    inputs = {"x": np.ones((2, 2), np.float32), "b": strings}
    body = json.loads(encode_predict_body(inputs, "sig", "row"))
    assert body["signature_name"] == "sig"
    assert body["instances"][0] == {"x": [1.0, 1.0], "b": {"b64": "AP8="}}
    col = json.loads(encode_predict_body({"x": np.arange(3, dtype=np.int32)}, None))
    assert col == {"inputs": {"x": [0, 1, 2]}}
    out = decode_predict_body(b'{"outputs": {"y": [[1, 2]], "s": [{"b64": "AP8="}]}}', sig)
    assert out["y"].dtype == np.float32 and out["s"].tolist() == [b"\x00\xff"]
    raw = b'{"predictions": [{"y": [1, 2], "s": "a"}, {"y": [3, 4], "s": "b"}]}'
    rows = decode_predict_body(raw, sig)
    assert rows["y"].shape == (2, 2) and rows["s"].tolist() == [b"a", b"b"]


def test_public_names_resolve() -> None:
    import importlib

    modules = (
        "",
        ".codec",
        ".errors",
        ".grpc_client",
        ".rest_client",
        ".rest_json",
        ".rpcs",
        ".specs",
        ".outputs",
        ".images",
        ".labels",
        ".coco",
        ".pipeline",
        ".cli",
        ".lifecycle",
    )
    for name in modules:
        module = importlib.import_module(f"tfsuite.clients{name}")
        assert module.__all__, module.__name__
        for public in module.__all__:
            assert hasattr(module, public), f"{module.__name__}.{public}"
