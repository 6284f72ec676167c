//! Where a command's words go: stdout carries results (tables, documents, a dry run's comment),
//! stderr what the person watching wants to know. Commands take both as writers (as nextest's
//! `OutputWriter` does), so tests run them in-process and read what they wrote.

use std::fmt;
use std::io::Write;

use crate::Error;

pub struct Output<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

fn failed(path: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.into(),
        source,
    }
}

impl Output<'_> {
    /// Results, to stdout. A failed write is an error: the result is lost.
    pub fn print(&mut self, args: fmt::Arguments<'_>) -> Result<(), Error> {
        self.out.write_fmt(args).map_err(failed("<stdout>"))
    }

    pub fn println(&mut self, args: fmt::Arguments<'_>) -> Result<(), Error> {
        self.out
            .write_fmt(args)
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(failed("<stdout>"))
    }

    /// A rendered document or table, to stdout (or to stderr when stdout carries something
    /// else), flushed.
    pub fn bytes(&mut self, to_stderr: bool, bytes: &[u8]) -> Result<(), Error> {
        let (w, path): (&mut dyn Write, _) = if to_stderr {
            (&mut *self.err, "<stderr>")
        } else {
            (&mut *self.out, "<stdout>")
        };
        w.write_all(bytes)
            .and_then(|_| w.flush())
            .map_err(failed(path))
    }

    /// A line for the person watching, to stderr. Losing it loses no result, so a failed write
    /// is ignored.
    pub fn note(&mut self, args: fmt::Arguments<'_>) {
        let _ = self
            .err
            .write_fmt(args)
            .and_then(|_| self.err.write_all(b"\n"));
    }

    /// `note` without the line end.
    pub fn note_part(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.err.write_fmt(args);
    }
}
