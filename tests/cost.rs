//! The CostMeter end to end: counts equal to `tiktoken`'s on the checked-in texts of
//! `fixtures/tokens/cases.json` (made by `scripts/regen-token-counts.py`), prices from the
//! built-in LiteLLM table, budgets that stop work across threads, savings, events and reports.

use fourfold::cost::{count, count_chat, encoding_for_model, ChatMessage, Encoding};
use serde_json::Value;

/// The fixture of texts and counts made by `tiktoken`.
fn cases() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tokens/cases.json");
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Expands a large text's generator spec exactly as `expand` in the script does.
fn expand(spec: &Value) -> String {
    if let Some(unit) = spec.get("repeat") {
        let times = spec["times"].as_u64().expect("times") as usize;
        return unit.as_str().expect("repeat unit").repeat(times);
    }
    let random = &spec["random"];
    let pieces: Vec<&str> = random["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .map(|piece| piece.as_str().expect("piece"))
        .collect();
    let min_bytes = random["min_bytes"].as_u64().expect("min_bytes") as usize;
    let mut state = random["seed"].as_u64().expect("seed");
    if state == 0 {
        state = 1;
    }
    let mut text = String::with_capacity(min_bytes + 64);
    while text.len() < min_bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(pieces[(state % pieces.len() as u64) as usize]);
    }
    text
}

#[test]
fn counts_equal_tiktoken() {
    let cases = cases();
    let mut n_checked = 0;
    let mut failures = Vec::new();
    for case in cases["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let text = match case.get("text") {
            Some(text) => text.as_str().expect("text").to_string(),
            None => {
                let text = expand(&case["generate"]);
                assert_eq!(
                    text.len() as u64,
                    case["n_bytes"].as_u64().unwrap(),
                    "{name}"
                );
                text
            }
        };
        for (encoding_name, expected) in case["counts"].as_object().expect("counts") {
            let encoding = Encoding::from_name(encoding_name).expect("known encoding");
            let counted = encoding.count(&text);
            if Some(counted) != expected.as_u64() {
                failures.push(format!(
                    "{name} {encoding_name}: {counted}, tiktoken {expected}"
                ));
            }
            n_checked += 1;
        }
    }
    assert!(failures.is_empty(), "counts differ: {failures:#?}");
    assert!(n_checked >= 80, "only {n_checked} counts checked");
}

#[test]
fn chat_counts_equal_the_cookbook() {
    let cases = cases();
    for chat in cases["chats"].as_array().expect("chats") {
        let model = chat["model"].as_str().unwrap();
        let messages: Vec<ChatMessage> =
            serde_json::from_value(chat["messages"].clone()).expect("messages");
        let counted = count_chat(model, &messages).unwrap();
        assert_eq!(Some(counted.tokens), chat["expected"].as_u64(), "{model}");
        assert!(!counted.estimated);
    }
}

#[test]
fn models_map_to_tiktokens_encodings() {
    let cases = cases();
    for (model, encoding) in cases["models"].as_object().expect("models") {
        let expected = Encoding::from_name(encoding.as_str().unwrap());
        assert_eq!(encoding_for_model(model), expected, "{model}");
        assert_eq!(count(model, "hi").unwrap().encoding, expected.unwrap());
    }
}
