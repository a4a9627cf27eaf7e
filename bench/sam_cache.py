"""SAM's second click: latency with the image-embedding cache and without, and what sharing it would cost.

A person refines an object with several prompts on one image; only the first needs the image
encoder when the embedding is kept (ml.sam.SamAssist, one per web process). For each model this
prints, over --repeat runs (median and max, milliseconds):

* first prompt on an image (encoder + decoder: a cache miss, which is every prompt without a cache);
* second prompt on the same image (decoder only: a cache hit in this process);
* second prompt in another process (a second SamAssist on the same folder of embedding files):
  the embedding file is read instead of running the encoder (the shared cache's hit), and what
  writing that file adds to a miss;
* the embedding through Redis (serialise, SET, GET, load): what a cache shared by all web
  processes would add to a hit, with the embedding's size;
* a Redis request/answer hop with a prompt and a mask-sized answer: the least that computing
  prompts on an ML queue (one process holding model and cache) would add to every prompt.

Models: the tiny random SAM 1 and SAM 2.1 that the tests build (tests/sam.py), and with --full
the real sam2.1_hiera_tiny architecture at its 1024-pixel input, randomly initialised (the same
speed as the published weights, which cannot be downloaded here). One torch thread by default,
as one interactive request in a web worker.

Run:  .venv/bin/python bench/sam_cache.py [--repeat 5] [--full] [--threads 1] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.sam import SAM1_VARIANTS, SAM2_VARIANTS, Sam1Variant, SamAssist  # noqa: E402
from ml.synthetic import generate_sample  # noqa: E402
from tests.sam import TINY, TINY_SAM1, TINY_SAM2, tiny_builder, tiny_sam2_variant  # noqa: E402


def tiny_models(folder: Path) -> dict[str, Path]:
    """The tests' tiny SAM 1 and SAM 2.1 as checkpoint files, their variants registered."""
    import sam2  # noqa: F401 - initialises hydra's config search path to the sam2 package
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from segment_anything import sam_model_registry

    sam_model_registry[TINY] = tiny_builder()
    SAM1_VARIANTS[TINY] = Sam1Variant(**TINY_SAM1)
    SAM2_VARIANTS[TINY_SAM2] = tiny_sam2_variant()
    torch.manual_seed(0)
    sam1 = folder / "tiny-sam1.pth"
    torch.save(tiny_builder()().state_dict(), sam1)
    variant = SAM2_VARIANTS[TINY_SAM2]
    cfg = compose(config_name=variant.config, overrides=list(variant.overrides))
    OmegaConf.resolve(cfg)
    sam21 = folder / "tiny-sam2.1.pt"
    torch.save({"model": instantiate(cfg.model, _recursive_=True).state_dict()}, sam21)
    return {"tiny SAM 1 (random)": sam1, "tiny SAM 2.1 (random)": sam21}


def full_hiera_tiny(folder: Path) -> Path:
    """sam2.1_hiera_tiny's architecture with random weights, saved as sam2 publishes checkpoints."""
    from sam2.build_sam import build_sam2

    model = build_sam2(SAM2_VARIANTS["sam2.1_hiera_tiny"].config, None, device="cpu")
    path = folder / "random-hiera-tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, ms: list[float], extra: str = "") -> None:
    print(f"  {name:<44} median {statistics.median(ms):9.1f} ms   max {max(ms):9.1f} ms  {extra}")


def bench_model(name: str, checkpoint: Path, image: np.ndarray, repeat: int, redis_url: str | None, files: Path) -> None:
    sam = SamAssist()
    box = [image.shape[1] * 0.2, image.shape[0] * 0.2, image.shape[1] * 0.5, image.shape[0] * 0.5]
    click = {"points": [[image.shape[1] * 0.45, image.shape[0] * 0.45]], "labels": [1]}
    sam.segment(image, checkpoint=checkpoint, box=box)  # loads the model (once per process)
    keys = iter(range(10**9))
    first = timed(lambda: sam.segment(image, checkpoint=checkpoint, box=box, image_key=next(keys)), repeat)
    sam.segment(image, checkpoint=checkpoint, box=box, image_key="kept")
    second = timed(lambda: sam.segment(image, checkpoint=checkpoint, box=box, **click, image_key="kept"), repeat)
    embedding = sam._cache[(str(checkpoint), "kept")]
    print(f"{name}: image {image.shape[1]}x{image.shape[0]}, embedding {embedding.nbytes / 2**20:.1f} MiB")
    row("first prompt (miss: encoder + decoder)", first)
    row("second prompt, cache in this process (hit)", second, f"{statistics.median(first) / statistics.median(second):.0f}x faster")
    folder = files / name.replace(" ", "-")
    writer = SamAssist(disk_cache_dir=folder)
    writer.segment(image, checkpoint=checkpoint, box=box)  # loads the model
    written = timed(lambda: writer.segment(image, checkpoint=checkpoint, box=box, image_key=next(keys)), repeat)
    writer.segment(image, checkpoint=checkpoint, box=box, image_key="shared")
    other = SamAssist(disk_cache_dir=folder, cache_bytes=1)  # another process: nothing in its memory
    other.segment(image, checkpoint=checkpoint, box=box)  # loads the model
    from_file = timed(lambda: other.segment(image, checkpoint=checkpoint, box=box, **click, image_key="shared"), repeat)
    assert other.stats.disk_hits == repeat and other.stats.misses == 1, other.stats
    size = next(folder.glob("*.npz")).stat().st_size
    row("first prompt, embedding file written (miss)", written)
    row("second prompt, other process (file hit)", from_file,
        f"{statistics.median(first) / statistics.median(from_file):.0f}x faster, file {size / 2**20:.1f} MiB")
    if redis_url is None:
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    tensors = embedding.state

    def through_redis() -> None:
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        client.set("bench:sam:embedding", buffer.getvalue())
        torch.load(io.BytesIO(client.get("bench:sam:embedding")), weights_only=False)

    shared = timed(through_redis, repeat)
    row("embedding through Redis (shared cache adds)", shared)
    prompt = b'{"image": 1, "box": [1, 2, 3, 4], "points": [[5, 6]], "labels": [1]}'
    answer = b"x" * 4096  # an RLE mask and its candidates

    def hop() -> None:
        client.rpush("bench:sam:requests", prompt)
        client.blpop(["bench:sam:requests"], timeout=1)
        client.rpush("bench:sam:answers", answer)
        client.blpop(["bench:sam:answers"], timeout=1)

    row("request/answer hop through Redis (ML queue adds)", timed(hop, repeat))
    client.delete("bench:sam:embedding", "bench:sam:requests", "bench:sam:answers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also the real sam2.1_hiera_tiny architecture (random weights, 1024 px)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="Redis for the sharing costs ('' to skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.repeat} runs each\n")
    image = generate_sample(seed=3, size=(480, 640)).image
    with tempfile.TemporaryDirectory() as tmp:
        models = tiny_models(Path(tmp))
        if args.full:
            models["sam2.1_hiera_tiny architecture (random)"] = full_hiera_tiny(Path(tmp))
        for name, checkpoint in models.items():
            bench_model(name, checkpoint, image, args.repeat, args.redis or None, Path(tmp) / "files")
            print()


if __name__ == "__main__":
    main()
