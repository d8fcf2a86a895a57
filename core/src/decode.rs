//! Decoding bincode from bytes that may be forged or damaged, without letting a length field
//! exhaust memory.
//!
//! bincode reads a string's or a byte buffer's length and allocates that many bytes before it
//! reads them, so ten bytes of input can ask for an exabyte and abort the process. Its limit
//! configuration makes every claim count: a decoder refuses once the bytes it has claimed pass
//! the limit. Through serde, a claim is a primitive's size (at most 16 bytes, for one byte of
//! varint input at least) or a string's or buffer's length (one byte of input each), so a
//! decode of `n` bytes claims at most `16 * n`. [`decode_whole`] sets the limit to the smallest
//! of a few tiers above that: whatever the input says, a decode allocates at most a small
//! multiple of the input's own size.

use std::io::{BufReader, Read};

use bincode::error::DecodeError;
use serde::de::DeserializeOwned;

/// The most bytes a decode may claim for each byte of input: a `u128` or `i128` read from one
/// varint byte.
const CLAIM_PER_BYTE: usize = 16;

/// Calls `$decode::<$generic, LIMIT>($args)` with the smallest `LIMIT` of a few tiers at or above
/// `$most` bytes.
macro_rules! within_tier {
    ($most:expr, $decode:ident::<$($generic:ty),*>($($arg:expr),*)) => {{
        let most: usize = $most;
        if most <= 1 << 16 {
            $decode::<$($generic,)* { 1 << 16 }>($($arg),*)
        } else if most <= 1 << 22 {
            $decode::<$($generic,)* { 1 << 22 }>($($arg),*)
        } else if most <= 1 << 28 {
            $decode::<$($generic,)* { 1 << 28 }>($($arg),*)
        } else if most <= 1 << 34 {
            $decode::<$($generic,)* { 1 << 34 }>($($arg),*)
        } else {
            $decode::<$($generic,)* { usize::MAX }>($($arg),*)
        }
    }};
}

/// The value bincode (the standard configuration) encoded in the whole of `bytes`, or why not:
/// bincode's error, or how many bytes were left after the value.
pub(crate) fn decode_whole<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let most = bytes.len().saturating_mul(CLAIM_PER_BYTE);
    let (value, used) =
        within_tier!(most, within::<T>(bytes)).map_err(|error: DecodeError| error.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

/// The value bincode encoded at the start of `reader`, which holds `len` bytes, or bincode's
/// error; as with [`decode_whole`], the decode claims at most a small multiple of `len`,
/// whatever the bytes say. The caller checks that the value took all `len` bytes.
pub(crate) fn decode_buffered<T: DeserializeOwned, R: Read>(
    reader: &mut BufReader<R>,
    len: u64,
) -> Result<T, DecodeError> {
    let most = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .saturating_mul(CLAIM_PER_BYTE);
    within_tier!(most, buffered_within::<T, R>(reader))
}

fn within<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<LIMIT>())
}

fn buffered_within<T: DeserializeOwned, R: Read, const LIMIT: usize>(
    reader: &mut BufReader<R>,
) -> Result<T, DecodeError> {
    bincode::serde::decode_from_reader(reader, bincode::config::standard().with_limit::<LIMIT>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        wide: Vec<u128>,
        narrow: Vec<u64>,
        text: String,
        bytes: Vec<u8>,
        chars: Vec<char>,
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
    }

    #[test]
    fn a_forged_length_is_refused_before_it_is_allocated() {
        // 253 announces a u64 length; this one is about 5.5e18 bytes (the length CI's proptest
        // once drew, which aborted the test process when nothing limited the claim).
        let forged = [253, 0xbc, 0x7a, 0x5f, 0x3b, 0x11, 0x2e, 0xd2, 0x4c, b'a'];
        let error = decode_whole::<String>(&forged).unwrap_err();
        assert!(error.contains("LimitExceeded"), "{error}");
        let error = decode_whole::<(u8, String)>(&[[7].as_slice(), &forged].concat()).unwrap_err();
        assert!(error.contains("LimitExceeded"), "{error}");
    }

    #[test]
    fn values_that_claim_the_most_per_byte_still_decode() {
        // Small integers are one varint byte each but claim their full width, so these claim
        // close to sixteen bytes per byte of input.
        for n in [0, 1, 100, 5_000, 300_000] {
            let record = Record {
                wide: vec![1; n],
                narrow: vec![2; n],
                text: "é".repeat(n),
                bytes: vec![3; n],
                chars: vec!['x'; n],
            };
            assert_eq!(decode_whole::<Record>(&encode(&record)).unwrap(), record);
        }
    }

    #[test]
    fn trailing_and_missing_bytes_are_errors() {
        let mut bytes = encode(&"text".to_string());
        assert!(decode_whole::<String>(&bytes[..bytes.len() - 1]).is_err());
        bytes.push(0);
        assert_eq!(
            decode_whole::<String>(&bytes).unwrap_err(),
            "1 trailing bytes"
        );
    }
}
