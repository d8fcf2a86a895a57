"""Points OpenAI's `tiktoken` at encoding files found on this machine, so it runs without internet.

`tiktoken` downloads each encoding once and keeps it in `TIKTOKEN_CACHE_DIR`, under the sha1 hex of
its download URL, and checks the file's sha256 before using it. The same files ship inside the Rust
crates fourfold builds with (`bpe-openai` gzipped in `data/`, `tiktoken-rs` plain in `assets/`), so
this module copies them from the cargo registry into a cache directory under those names, after
checking the sha256 that `tiktoken` expects.
"""

import glob
import gzip
import hashlib
import os
import sys

BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"

# The sha256 of each file, as `tiktoken_ext/openai_public.py` expects it.
EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


def _candidates(name):
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    registry = os.path.join(cargo_home, "registry", "src", "*")
    for path in sorted(glob.glob(os.path.join(registry, "bpe-openai-*", "data", name + ".tiktoken.gz"))):
        yield path, lambda p=path: gzip.open(p, "rb").read()
    for path in sorted(glob.glob(os.path.join(registry, "tiktoken-rs-*", "assets", name + ".tiktoken"))):
        yield path, lambda p=path: open(p, "rb").read()


def prepare(cache_dir):
    """Fills `cache_dir` with the o200k_base and cl100k_base files and sets `TIKTOKEN_CACHE_DIR`."""
    os.makedirs(cache_dir, exist_ok=True)
    for name, sha256 in EXPECTED_SHA256.items():
        target = os.path.join(cache_dir, hashlib.sha1((BASE_URL + name + ".tiktoken").encode()).hexdigest())
        if os.path.exists(target) and hashlib.sha256(open(target, "rb").read()).hexdigest() == sha256:
            continue
        for path, read in _candidates(name):
            data = read()
            if hashlib.sha256(data).hexdigest() == sha256:
                with open(target + ".tmp", "wb") as out:
                    out.write(data)
                os.replace(target + ".tmp", target)
                break
        else:
            sys.exit(
                f"no {name}.tiktoken with sha256 {sha256} in the cargo registry; "
                "run `cargo fetch` first so that bpe-openai or tiktoken-rs is unpacked"
            )
    os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir
