//! Times token counting on files, one thread, for `benches/tokens_vs_tiktoken.py`: fourfold's
//! counter (`Encoding::count`) and tiktoken-rs, on the same texts that script times `tiktoken` on.
//!
//! Usage: `token_count ENCODING MIN_SECONDS FILE...`. Prints one JSON object per file and counter:
//! `{"file", "counter", "bytes", "tokens", "seconds"}`, where `seconds` is the fastest of the
//! repetitions run within `MIN_SECONDS` (at least 3). fourfold's repetitions each run on a fresh
//! thread (its piece cache is per thread and starts empty); the thread's start is timed with it.

use std::time::Instant;

use fourfold::cost::Encoding;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: token_count ENCODING MIN_SECONDS FILE...");
        std::process::exit(2);
    }
    let Some(encoding) = Encoding::from_name(&args[0]) else {
        eprintln!("unknown encoding `{}`", args[0]);
        std::process::exit(2);
    };
    let min_seconds: f64 = args[1].parse().unwrap_or(1.0);
    let tiktoken_rs = match encoding {
        Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
    };
    // Build both encoders before timing anything.
    encoding.count("warm up");
    tiktoken_rs.encode_ordinary("warm up");
    for file in &args[2..] {
        let text = std::fs::read_to_string(file).unwrap_or_else(|error| {
            eprintln!("cannot read `{file}`: {error}");
            std::process::exit(1);
        });
        // Each repetition counts on a new thread, so that fourfold's per-thread cache of piece
        // counts starts empty every time, as it does for a text a process has not seen.
        let (tokens, seconds) = time(min_seconds, || {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| encoding.count(&text) as usize)
                    .join()
                    .unwrap_or(0)
            })
        });
        report(file, "fourfold", text.len(), tokens, seconds);
        // tiktoken-rs's regex gives up on very long whitespace runs and the encoder panics.
        let attempt = std::panic::catch_unwind(|| {
            time(min_seconds, || tiktoken_rs.encode_ordinary(&text).len())
        });
        match attempt {
            Ok((tokens, seconds)) => report(file, "tiktoken-rs", text.len(), tokens, seconds),
            Err(_) => println!(
                "{}",
                serde_json::json!({"file": file, "counter": "tiktoken-rs", "bytes": text.len(), "error": "panicked"})
            ),
        }
    }
}

fn time(min_seconds: f64, mut run: impl FnMut() -> usize) -> (usize, f64) {
    let started = Instant::now();
    let mut best = f64::INFINITY;
    let mut tokens = 0;
    let mut n_runs = 0;
    while n_runs < 3 || started.elapsed().as_secs_f64() < min_seconds {
        let run_started = Instant::now();
        tokens = std::hint::black_box(run());
        best = best.min(run_started.elapsed().as_secs_f64());
        n_runs += 1;
    }
    (tokens, best)
}

fn report(file: &str, counter: &str, bytes: usize, tokens: usize, seconds: f64) {
    println!(
        "{}",
        serde_json::json!({"file": file, "counter": counter, "bytes": bytes, "tokens": tokens, "seconds": seconds})
    );
}
