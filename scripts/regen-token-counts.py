#!/usr/bin/env python3
"""Regenerates `tests/fixtures/tokens/cases.json`: texts with their token counts by OpenAI's `tiktoken`.

The Rust test `tests/cost.rs` (`counts_equal_tiktoken`) counts every text of that file with fourfold
and expects exactly these numbers. Small texts are stored as they are. Large texts (a megabyte each)
are stored as a generator spec that the test expands the same way as `expand` below, so the repo
does not hold megabytes of text. Chat cases hold messages and the count of OpenAI's cookbook
formula (`num_tokens_from_messages`). Model cases hold the encoding tiktoken picks for a model name.

Usage (no internet needed; see `scripts/tiktoken_cache.py`):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tiktoken
    /tmp/venv/bin/python scripts/regen-token-counts.py
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiktoken_cache  # noqa: E402

ENCODINGS = ["o200k_base", "cl100k_base"]
MEGABYTE = 1 << 20

SMALL = {
    "empty": "",
    "space": " ",
    "hello": "hello world",
    "sentence": "The quick brown fox jumps over the lazy dog.",
    "contractions": "I'm sure they'll say it's what we'd've done; DON'T YOU'LL",
    "numbers": "1 12 123 1234 12345 3.14159 -42 1e-9 0x1F 1,000,000 ２０２４",
    "python": "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "rust": "fn main() {\n\tlet v: Vec<u8> = (0..=255).collect();\n\tprintln!(\"{:?}\", &v[..4]);\n}\r\n",
    "json": '{"a": [1, 2, {"b": null}], "c": "d\\n", "e": true}',
    "shell": "cat /etc/passwd | grep -v '^#' && echo $HOME >> ~/.bashrc 2>&1",
    "markdown": "# Title\n\n- item one\n- item **two**\n\n```bash\nls -la\n```\n\n> quote\n",
    "html": "<div class=\"x\"><p>Hi&nbsp;there</p><br/></div>",
    "whitespace_mix": "a  b   c    d\t\te\n\n\nf \n \n g\r\n\r\nh\u00a0i\u3000j \u2003k",
    "trailing_spaces": "word   ",
    "leading_newlines": "\n\n\n   indented",
    "only_newlines": "\n" * 50,
    "spaces_then_word": " " * 40 + "x",
    "tabs": "\t" * 33 + "end\t",
    "accents": "héllo wörld ça va? Ñandú, façade, naïve, coöperate",
    "combining": "e\u0301 a\u0300 o\u0308 n\u0303 Z\u0335\u0321\u0353a\u0336\u0328l\u0334g\u0337o",
    "cjk": "世界你好，这是一个测试。日本語のテキストです。한국어 텍스트입니다.",
    "arabic_hebrew": "مرحبا بالعالم שלום עולם",
    "devanagari_thai": "नमस्ते दुनिया สวัสดีชาวโลก",
    "cyrillic_greek": "Привет, мир! Γειά σου Κόσμε",
    "emoji": "🙂 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 ❤️ 🤖🤖🤖",
    "mixed_scripts": "Hello世界مرحبا🙂Привет123नमस्ते\tabc",
    "special_tokens": "<|endoftext|> <|im_start|>user<|im_end|> <|fim_prefix|>",
    "control_chars": "a\u0000b\u0001c\u001fd\u007fe\u200bf\ufeffg",
    "long_word": "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "url": "https://example.com/path/to/page?query=1&b=two#frag",
    "base64": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
    "newline_slash": "a.\n/b\n.\n/c\n//\n\n/ d",
    "case_mix": "HTTPServer XMLHttpRequest iPhone McDonald's CamelCaseWords ALLCAPS",
    "apostrophes": "'s 't 're 've 'm 'll 'd 'S 'T 'RE ’s",
    "astral": "\U0001d400\U0001d401 \U00010348 \U0001f600 \U0002a6a5",
}

# Pieces the large random texts are drawn from: words of several scripts, code, numbers, emoji
# and whitespace of every kind the pre-tokenizers treat differently.
PIECES_MIXED = [
    "the", " the", " quick", " Brown", "FOX", " jumps", "'s", "'LL", " über", " façade",
    " 世界", "你好", "日本語", " 한국어", " مرحبا", " שלום", " नमस्ते", " สวัสดี", " Привет", " Κόσμε",
    "🙂", "👨‍👩‍👧‍👦", "🇫🇷", "e\u0301", " 12", "345", "6789", " 3.14", "0x1F",
    "(", ")", "{", "}", " =>", "::", "->", " //", "/*", "*/", ";", ",", ".", "!", "?", "\"", "'",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\u00a0", "\u3000", "\n/",
    "<|endoftext|>", "https://", "snake_case", "CamelCase",
]
PIECES_LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
PIECES_BASE64 = PIECES_LETTERS + [c.upper() for c in PIECES_LETTERS] + list("0123456789+/")
PIECES_WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", " \n", "\u00a0", "\u3000", "\u2003"]

LARGE = {
    "repeat_a_1mb": {"repeat": "a", "times": MEGABYTE},
    "repeat_space_1mb": {"repeat": " ", "times": MEGABYTE},
    "repeat_newline_1mb": {"repeat": "\n", "times": MEGABYTE},
    "repeat_emoji_1mb": {"repeat": "🤖", "times": MEGABYTE // 4},
    "repeat_digits_1mb": {"repeat": "0123456789", "times": MEGABYTE // 10},
    "random_letters_no_spaces_1mb": {"random": {"seed": 7, "pieces": PIECES_LETTERS, "min_bytes": MEGABYTE}},
    "random_base64_1mb": {"random": {"seed": 11, "pieces": PIECES_BASE64, "min_bytes": MEGABYTE}},
    "random_whitespace_1mb": {"random": {"seed": 13, "pieces": PIECES_WHITESPACE, "min_bytes": MEGABYTE}},
    "random_mixed_1mb": {"random": {"seed": 42, "pieces": PIECES_MIXED, "min_bytes": MEGABYTE}},
    "small_texts_1mb": {"random": {"seed": 99, "pieces": sorted(t for t in SMALL.values() if t), "min_bytes": MEGABYTE}},
}

CHATS = [
    {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    },
    {
        "model": "gpt-4",
        "messages": [
            {"role": "system", "content": "You are terse.", "name": "rules"},
            {"role": "user", "content": "Count to three: 1, 2, 3 🙂"},
            {"role": "assistant", "content": "1 2 3"},
        ],
    },
    {
        "model": "gpt-3.5-turbo-0301",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        ],
    },
    {"model": "o3-mini", "messages": [{"role": "user", "content": ""}]},
]

MODELS = [
    "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "chatgpt-4o-latest", "gpt-4.1", "gpt-4.1-mini",
    "gpt-4.5-preview", "gpt-5", "gpt-5-mini", "o1", "o1-mini", "o3", "o3-mini", "o4-mini",
    "o4-mini-2025-04-16", "gpt-4", "gpt-4-0613", "gpt-4-turbo", "gpt-4-32k", "gpt-3.5-turbo",
    "gpt-3.5-turbo-0125", "gpt-35-turbo", "gpt-3.5", "text-embedding-3-small", "ft:gpt-4o:org:x:1",
    "ft:gpt-3.5-turbo:org:y:2",
]


def xorshift_pieces(seed, pieces, min_bytes):
    """The text the Rust test builds from the same spec: xorshift64 picks pieces until `min_bytes`."""
    state = seed & 0xFFFFFFFFFFFFFFFF or 1
    out = []
    n_bytes = 0
    while n_bytes < min_bytes:
        state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 7
        state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
        piece = pieces[state % len(pieces)]
        out.append(piece)
        n_bytes += len(piece.encode())
    return "".join(out)


def expand(spec):
    if "repeat" in spec:
        return spec["repeat"] * spec["times"]
    random = spec["random"]
    return xorshift_pieces(random["seed"], random["pieces"], random["min_bytes"])


def count_large(encoding, text):
    """The count of `text` and how it was made.

    `encode_ordinary` is tiktoken's normal path. Its regex engine (fancy-regex) overflows its stack on
    a very long whitespace run and tiktoken then panics, so for such texts the count comes from
    tiktoken's own `_encode_only_native_bpe`: the same pattern string split by Python's `regex`
    package, and tiktoken's BPE on each piece. Both paths are checked to agree on every other text.
    """
    native = len(encoding._encode_only_native_bpe(text))
    try:
        ordinary = len(encoding.encode_ordinary(text))
    except BaseException as error:  # pyo3's PanicException derives from BaseException.
        if isinstance(error, KeyboardInterrupt):
            raise
        return native, "encode_only_native_bpe"
    if ordinary != native:
        sys.exit(f"tiktoken's two paths disagree: encode_ordinary {ordinary}, native {native}")
    return ordinary, "encode_ordinary"


def chat_count(encoding, model, messages):
    """OpenAI's cookbook `num_tokens_from_messages`: per-message overhead, name, reply priming."""
    if model == "gpt-3.5-turbo-0301":
        tokens_per_message, tokens_per_name = 4, -1
    else:
        tokens_per_message, tokens_per_name = 3, 1
    n_tokens = 0
    for message in messages:
        n_tokens += tokens_per_message
        for key, value in message.items():
            n_tokens += len(encoding.encode_ordinary(value))
            if key == "name":
                n_tokens += tokens_per_name
    return n_tokens + 3


def main():
    tiktoken_cache.prepare(os.path.join(tempfile.gettempdir(), "fourfold-tiktoken-cache"))
    import tiktoken

    encodings = {name: tiktoken.get_encoding(name) for name in ENCODINGS}
    cases = []
    for name, text in SMALL.items():
        counts = {}
        for enc in ENCODINGS:
            counts[enc] = len(encodings[enc].encode_ordinary(text))
            if counts[enc] != len(encodings[enc]._encode_only_native_bpe(text)):
                sys.exit(f"tiktoken's two paths disagree on {name!r}")
        cases.append({"name": name, "text": text, "counts": counts})
    for name, spec in LARGE.items():
        text = expand(spec)
        counts = {}
        counted_by = {}
        for enc in ENCODINGS:
            started = time.perf_counter()
            counts[enc], counted_by[enc] = count_large(encodings[enc], text)
            print(
                f"{name} {enc}: {counts[enc]} tokens by {counted_by[enc]} in {time.perf_counter() - started:.2f}s",
                file=sys.stderr,
            )
        cases.append(
            {"name": name, "generate": spec, "n_bytes": len(text.encode()), "counts": counts, "counted_by": counted_by}
        )
    chats = []
    for chat in CHATS:
        encoding = tiktoken.encoding_for_model(chat["model"])
        chats.append(dict(chat, expected=chat_count(encoding, chat["model"], chat["messages"])))
    models = {model: tiktoken.encoding_name_for_model(model) for model in MODELS}
    out = {
        "generated_by": "scripts/regen-token-counts.py",
        "tiktoken_version": tiktoken.__version__,
        "cases": cases,
        "chats": chats,
        "models": models,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokens", "cases.json")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(out, file, ensure_ascii=False, indent=1)
        file.write("\n")
    print(f"wrote {len(cases)} texts, {len(chats)} chats, {len(models)} models to {os.path.normpath(path)}", file=sys.stderr)


if __name__ == "__main__":
    main()
