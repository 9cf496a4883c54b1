"""Shards streamed over HTTP from a loopback server, as from an object store or a web server."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from sat.data.datamodule import ShardDataModule, expand_urls
from sat.data.label_codes import masks_to_codes
from sat.data.sampling import SamplingConfig
from sat.data.shard_format import decode_sample, encode_sample


def _write_shards(folder: Path) -> dict[str, np.ndarray]:
    """Two tar shards of three small synthetic cases each; returns key -> image."""
    rng = np.random.default_rng(0)
    images = {}
    for shard in range(2):
        with wds.TarWriter(str(folder / f"syn-train-{shard:06d}.tar")) as sink:
            for i in range(3):
                key = f"syn__case{shard}{i}"
                image = rng.normal(size=(1, 24, 22, 20)).astype(np.float32)
                masks = np.zeros((2, 24, 22, 20), bool)
                masks[0, 4:14, 5:15, 3:12] = True
                masks[1, 10:20, 8:16, 9:18] = True  # overlaps the first
                meta = {"case_id": key, "dataset": "syn", "modality": "CT", "spacing": [4.0] * 3,
                        "concepts": ["liver", "spleen"], "annotated": ["liver", "spleen"]}
                sink.write(encode_sample(key, image, *masks_to_codes(masks), meta))
                images[key] = image
    return images


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    images = _write_shards(root)
    hits: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):  # keep pytest output clean, but count requests
            hits.append(self.path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", images, hits
    httpd.shutdown()
    thread.join(timeout=5)


def test_webdataset_reads_shards_over_http(server):
    base, images, hits = server
    urls = expand_urls(base + "/syn-train-{000000..000001}.tar")
    assert urls == [f"{base}/syn-train-000000.tar", f"{base}/syn-train-000001.tar"]
    got = {s["key"]: s for s in map(decode_sample, wds.WebDataset(urls, shardshuffle=False))}
    assert set(got) == set(images)
    for key, s in got.items():
        assert np.allclose(s["image"], images[key], atol=2e-3)  # float16 storage
        assert s["masks"].shape == (2, 24, 22, 20) and s["masks"][0].sum() == 10 * 10 * 9
        assert (s["masks"][0] & s["masks"][1]).any()  # overlapping concepts survive
    assert sum("syn-train" in h for h in hits) >= 2


def test_training_stream_from_http(server):
    base, _, hits = server
    before = len(hits)
    dm = ShardDataModule(train={"syn": base + "/syn-train-{000000..000001}.tar"}, batch_size=2, num_workers=0,
                         steps_per_epoch=3, shuffle_buffer=2, crops_per_case=1,
                         sampling=SamplingConfig(patch_size=(16, 16, 16), max_queries=4))
    batches = list(dm.train_dataloader())
    assert len(batches) == 3  # the epoch length is set on the loader, whatever the shard count
    for b in batches:
        assert b["image"].shape == (2, 1, 16, 16, 16) and b["target"].shape[:1] == (2,)
        assert set(b["dataset"]) == {"syn"} and b["valid"].any()
    assert len(hits) > before  # the samples really came over HTTP
