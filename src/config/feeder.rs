//! Data files (`data:` in a scenario): rows of values that requests use as `{{ data.COLUMN }}`.
//!
//! A CSV file with a header row, or JSON lines (one object a line, `.jsonl`/`.ndjson`). The file
//! is read once when the suite is loaded; every virtual user of every load thread shares the one
//! copy (`Arc<Feeder>`), and the row cursor is one atomic counter: nothing is copied per user.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::Rng;
use rand::rngs::SmallRng;

/// How walks take rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// One cursor shared by all users, in file order.
    Sequential,
    /// Each walk takes a row at random (rows repeat; never exhausted).
    Random,
    /// One cursor shared by all users, in file order, each row at most once per pass; by
    /// default the scenario stops when the rows run out.
    Unique,
}

/// What happens when a `sequential` or `unique` cursor passes the last row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// The scenario ends (its measurement stops with the last row).
    Stop,
    /// Start again from the first row.
    Wrap,
}

#[derive(Debug)]
pub struct Feeder {
    /// The file, as the scenario named it: for messages and the record.
    pub file: String,
    pub columns: Vec<String>,
    /// Row-major cells, `columns.len()` per row.
    cells: Vec<Box<str>>,
    /// The rows this feeder hands out: `[first, end)` (all of them, unless partitioned).
    first: usize,
    end: usize,
    pub order: Order,
    pub on_exhausted: Exhausted,
    cursor: AtomicU64,
    exhausted: AtomicBool,
}

impl Feeder {
    /// Read `path` (CSV with a header row, or JSON lines). Errors are one line, with the file's
    /// own line number where the problem is in it.
    pub fn load(
        path: &Path,
        shown: &str,
        order: Order,
        on_exhausted: Exhausted,
    ) -> Result<Feeder, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read data file {}: {e}", path.display()))?;
        let jsonl = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonl" | "ndjson")
        );
        let (columns, cells) = if jsonl {
            parse_jsonl(&text, shown)?
        } else {
            parse_csv(&text, shown)?
        };
        let rows = cells.len() / columns.len().max(1);
        if rows == 0 {
            return Err(format!("data file {shown} has no rows"));
        }
        Ok(Feeder {
            file: shown.to_string(),
            columns,
            cells,
            first: 0,
            end: rows,
            order,
            on_exhausted,
            cursor: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
        })
    }

    /// Rows this feeder hands out.
    pub fn rows(&self) -> usize {
        self.end - self.first
    }

    /// Row `i` of the file (absolute index).
    pub fn row(&self, i: usize) -> &[Box<str>] {
        let w = self.columns.len();
        &self.cells[i * w..(i + 1) * w]
    }

    /// The row for the next walk, or None once a `stop` feeder has run out (the scenario then
    /// ends: see `is_exhausted`).
    pub fn next(&self, rng: &mut SmallRng) -> Option<usize> {
        let n = self.rows() as u64;
        let k = match self.order {
            Order::Random => rng.random_range(0..n),
            Order::Sequential | Order::Unique => {
                let k = self.cursor.fetch_add(1, Ordering::Relaxed);
                match self.on_exhausted {
                    Exhausted::Wrap => k % n,
                    Exhausted::Stop if k < n => k,
                    Exhausted::Stop => {
                        self.exhausted.store(true, Ordering::Relaxed);
                        return None;
                    }
                }
            }
        };
        Some(self.first + k as usize)
    }

    /// A `stop` feeder ran out of rows: the scenario is over.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// A random row's value in `column` (`pick(data.COLUMN)`), among this feeder's rows.
    pub fn pick(&self, column: usize, rng: &mut SmallRng) -> &str {
        let i = rng.random_range(self.first..self.end);
        self.row(i).get(column).map_or("", |v| v)
    }

    /// Shard `index` of `count` (0-based): a contiguous slice of the rows, so that `count`
    /// gate processes (a future `--shard I/N`) never share a row of a `unique` file. The cells
    /// stay shared through the `Arc` of the caller's clone; this copies only when called.
    pub fn partition(&self, index: usize, count: usize) -> Feeder {
        let count = count.max(1);
        let n = self.rows();
        let first = self.first + n * index.min(count) / count;
        let end = self.first + n * (index + 1).min(count) / count;
        Feeder {
            file: self.file.clone(),
            columns: self.columns.clone(),
            cells: self.cells.clone(),
            first,
            end: end.max(first),
            order: self.order,
            on_exhausted: self.on_exhausted,
            cursor: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
        }
    }
}

/// RFC 4180 CSV: a header row, then rows of as many fields; fields may be quoted (`"a, b"`,
/// `""` for a quote, line breaks inside quotes).
fn parse_csv(text: &str, shown: &str) -> Result<(Vec<String>, Vec<Box<str>>), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<(usize, Vec<String>)> = Vec::new();
    let mut field = String::new();
    let mut record: Vec<String> = Vec::new();
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                any = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if any || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    records.push((record_line, std::mem::take(&mut record)));
                }
                any = false;
                line += 1;
                record_line = line;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(format!("{shown}:{record_line}: unclosed quote"));
    }
    if any || !field.is_empty() {
        record.push(field);
        records.push((record_line, record));
    }
    let mut records = records.into_iter();
    let (_, header) = records
        .next()
        .ok_or_else(|| format!("data file {shown} is empty (a CSV needs a header row)"))?;
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    if header.iter().any(String::is_empty) {
        return Err(format!("{shown}:1: an empty column name in the header row"));
    }
    let mut cells = Vec::new();
    for (at, r) in records {
        if r.len() != header.len() {
            return Err(format!(
                "{shown}:{at}: {} fields, the header has {}",
                r.len(),
                header.len()
            ));
        }
        cells.extend(r.into_iter().map(String::into_boxed_str));
    }
    Ok((header, cells))
}

/// JSON lines: one object a line; columns are the first object's keys, every line must have
/// them. Strings are taken as they are, other values as their JSON text.
fn parse_jsonl(text: &str, shown: &str) -> Result<(Vec<String>, Vec<Box<str>>), String> {
    let mut columns: Option<Vec<String>> = None;
    let mut cells = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = i + 1;
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{shown}:{at}: not JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("{shown}:{at}: each line must be a JSON object"))?;
        let cols = columns.get_or_insert_with(|| obj.keys().cloned().collect());
        for c in cols.iter() {
            let v = obj
                .get(c)
                .ok_or_else(|| format!("{shown}:{at}: no `{c}` (the first line has it)"))?;
            cells.push(match v {
                serde_json::Value::String(s) => s.clone().into_boxed_str(),
                other => other.to_string().into_boxed_str(),
            });
        }
    }
    let columns = columns.ok_or_else(|| format!("data file {shown} has no rows"))?;
    Ok((columns, cells))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn feeder(text: &str, ext: &str, order: Order, ex: Exhausted) -> Result<Feeder, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("d.{ext}"));
        std::fs::write(&p, text).unwrap();
        Feeder::load(&p, "d", order, ex)
    }

    #[test]
    fn csv_quotes_and_line_numbers() {
        let f = feeder(
            "id,name\n1,\"a, \"\"b\"\"\"\n2,\"two\nlines\"\n",
            "csv",
            Order::Sequential,
            Exhausted::Wrap,
        )
        .unwrap();
        assert_eq!(f.columns, ["id", "name"]);
        assert_eq!(f.rows(), 2);
        assert_eq!(&*f.row(0)[1], "a, \"b\"");
        assert_eq!(&*f.row(1)[1], "two\nlines");
        let err = feeder("id,name\n1,x\n2\n", "csv", Order::Random, Exhausted::Wrap).unwrap_err();
        assert!(err.starts_with("d:3:"), "{err}");
        let err = feeder(
            "{\"id\": 1}\n{\"x\": 2}\n",
            "jsonl",
            Order::Random,
            Exhausted::Wrap,
        )
        .unwrap_err();
        assert!(err.starts_with("d:2:"), "{err}");
    }

    #[test]
    fn unique_stops_and_sequential_wraps() {
        let mut rng = SmallRng::seed_from_u64(1);
        let f = feeder("id\n1\n2\n3\n", "csv", Order::Unique, Exhausted::Stop).unwrap();
        let got: Vec<_> = (0..5).map(|_| f.next(&mut rng)).collect();
        assert_eq!(got, [Some(0), Some(1), Some(2), None, None]);
        assert!(f.is_exhausted());
        let f = feeder("id\n1\n2\n", "csv", Order::Sequential, Exhausted::Wrap).unwrap();
        let got: Vec<_> = (0..5).map(|_| f.next(&mut rng).unwrap()).collect();
        assert_eq!(got, [0, 1, 0, 1, 0]);
        assert!(!f.is_exhausted());
    }

    #[test]
    fn partitions_cover_the_rows_once() {
        let f = feeder("id\n1\n2\n3\n4\n5\n", "csv", Order::Unique, Exhausted::Stop).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut all = Vec::new();
        for i in 0..3 {
            let p = f.partition(i, 3);
            while let Some(r) = p.next(&mut rng) {
                all.push(f.row(r)[0].to_string());
            }
        }
        assert_eq!(all, ["1", "2", "3", "4", "5"]);
    }
}
