//! The cost ledger: a JSON Lines file with one [`CostRecord`] per line, appended as the meter
//! records, read back by `fourfold cost report`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::err::CostError;
use super::record::CostRecord;

/// An open ledger file, appended to.
#[derive(Debug)]
pub(crate) struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    pub(crate) fn open(path: &Path) -> Result<Ledger, CostError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| CostError::Ledger {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `record` as one line, in one write, so that lines of concurrent writers never mix.
    pub(crate) fn append(&mut self, record: &CostRecord) -> Result<(), CostError> {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|source| CostError::Ledger {
                path: self.path.clone(),
                source,
            })
    }
}

/// Reads every record of the ledger at `path`. A torn last line (a crash mid-write) is skipped;
/// any other line that is not a record is an error naming it.
pub fn read_ledger(path: impl AsRef<Path>) -> Result<Vec<CostRecord>, CostError> {
    let path = path.as_ref();
    let io_error = |source| CostError::Ledger {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io_error)?);
    let lines: Vec<String> = reader.lines().collect::<Result<_, _>>().map_err(io_error)?;
    let mut records = Vec::with_capacity(lines.len());
    for (line_idx, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<CostRecord>(line) {
            Ok(record) => records.push(record),
            Err(_) if line_idx + 1 == lines.len() && !line.ends_with('}') => {}
            Err(error) => {
                return Err(CostError::LedgerCorrupt {
                    path: path.to_path_buf(),
                    line: line_idx as u64 + 1,
                    reason: error.to_string(),
                })
            }
        }
    }
    Ok(records)
}
