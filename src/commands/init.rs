//! `gate init`: a starter suite and the PR workflow, or a suite from an access log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::pipeline::Output;
use crate::cli::{InitArgs, LogFormat};
use crate::config;
use crate::init::write::{self, Decision};
use crate::init::{self, Format, JsonFields, Options, Survey, WriteOptions};
use crate::units::format_ms;
use crate::{Error, Outcome};

/// Read buffer for the log: large reads, one line at a time out of it.
const READ_BUFFER: usize = 256 * 1024;

pub fn init(args: InitArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    if let Some(t) = &args.target {
        config::parse_target(t).map_err(|m| Error::usage("--target", m))?;
    }
    match &args.from_access_log {
        None => starter(&args, io),
        Some(log) => from_log(log, &args, io),
    }
}

/// Refuse to replace any of `paths` unless `--force`, before anything is written.
fn refuse_existing(paths: &[PathBuf], force: bool) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(Error::usage(
            "--force",
            format!(
                "{} exists; gate init does not replace files unless --force is given (or choose another --out)",
                p.display()
            ),
        )),
        None => Ok(()),
    }
}

fn write_files(files: &[(PathBuf, &str)]) -> Result<(), Error> {
    for (path, text) in files {
        let written = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(path, text));
        written.map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

fn starter(args: &InitArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let target = args.target.as_deref();
    let mut files: Vec<(PathBuf, String)> = write::starter_suite(target)
        .into_iter()
        .map(|f| (args.out.join(f.path), f.text))
        .collect();
    let wf = write::workflow(&args.out.display().to_string(), target);
    files.push((wf.path, wf.text));
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    refuse_existing(&paths, args.force)?;
    let refs: Vec<(PathBuf, &str)> = files.iter().map(|(p, t)| (p.clone(), t.as_str())).collect();
    write_files(&refs)?;
    for p in &paths {
        io.println(format_args!("wrote {}", p.display()))?;
    }
    io.note(format_args!(
        "next: edit the lines marked CHANGE, then `gate run --suite {}`; \
         `gate init --from-access-log FILE` writes scenarios from real traffic",
        args.out.display()
    ));
    Ok(Outcome::Pass)
}

fn from_log(log: &Path, args: &InitArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    const FLAG: &str = "--from-access-log";
    if args.top == 0 {
        return Err(Error::usage("--top", "must be at least 1"));
    }
    if !(args.scale.is_finite() && args.scale > 0.0) {
        return Err(Error::usage(
            "--scale",
            "must be a number above 0, e.g. 0.5",
        ));
    }
    let mut fields = JsonFields::default();
    for f in &args.json_fields {
        fields.set(f).map_err(|m| Error::usage("--json-field", m))?;
    }
    let opts = Options {
        format: match args.format {
            LogFormat::Auto => Format::Auto,
            LogFormat::Combined => Format::Combined,
            LogFormat::Common => Format::Common,
            LogFormat::Json => Format::Json,
        },
        fields,
        ..Options::default()
    };
    let shown = log.display();
    let reader =
        open_log(log).map_err(|e| Error::usage(FLAG, format!("cannot open {shown}: {e}")))?;
    let survey = init::survey(reader, &opts)
        .map_err(|e| Error::usage(FLAG, format!("cannot read {shown}: {e}")))?;
    if survey.requests == 0 {
        let why = match survey.first_bad {
            Some((n, why)) => format!(
                "{shown}:{n}: not an access-log line ({why}); no line of {shown} is one \
                 (nginx/Apache combined or common, or JSON lines: see docs/init.md; --format picks one)"
            ),
            None => format!("{shown} is empty"),
        };
        return Err(Error::usage(FLAG, why));
    }
    report_reading(&survey, &shown.to_string(), &opts, io);

    let wopts = WriteOptions {
        top: args.top,
        scale: args.scale,
        include_writes: args.include_writes,
        target: args.target.clone(),
        source: log
            .file_name()
            .map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned()),
    };
    let choices = write::choose(&survey, &wopts);
    let written = choices
        .iter()
        .filter(|c| matches!(c.decision, Decision::Write { .. }))
        .count();
    if written == 0 {
        print_routes(&survey, &choices, args.scale, io)?;
        warn_skipped(&choices, io);
        return Err(Error::usage(
            FLAG,
            format!(
                "no route of {shown} can be written (see the warnings above); nothing was written"
            ),
        ));
    }
    let suite_exists = args.out.join(config::SUITE_FILE).exists();
    let files = write::scenario_files(&survey, &choices, &wopts, suite_exists);
    if let Some(f) = write::secret_in(&files) {
        // The templating keeps secret-looking values out; this is the last check, never expected
        // to fire. Say which file, never what.
        return Err(Error::usage(
            FLAG,
            format!(
                "{} would hold a value that looks like a secret; nothing was written (please report this)",
                f.path.display()
            ),
        ));
    }
    let files: Vec<(PathBuf, &str)> = files
        .iter()
        .map(|f| (args.out.join(&f.path), f.text.as_str()))
        .collect();
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    refuse_existing(&paths, args.force)?;
    write_files(&files)?;

    print_routes(&survey, &choices, args.scale, io)?;
    warn_skipped(&choices, io);
    if written < args.top {
        io.note(format_args!(
            "note: {written} route(s) could be written, fewer than --top {}",
            args.top
        ));
    }
    if suite_exists {
        io.note(format_args!(
            "note: kept the existing {}",
            args.out.join(config::SUITE_FILE).display()
        ));
    }
    for p in &paths {
        io.println(format_args!("wrote {}", p.display()))?;
    }
    io.note(format_args!(
        "next: `gate run --suite {}` (scenarios with a `data:` feeder need gate's feeders)",
        args.out.display()
    ));
    Ok(Outcome::Pass)
}

/// The log as lines: `-` is stdin; a gzip file (rotated logs, `access.log.2.gz`) is inflated
/// as it is read, whatever its name.
fn open_log(log: &Path) -> std::io::Result<Box<dyn BufRead>> {
    if log == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(
            READ_BUFFER,
            std::io::stdin().lock(),
        )));
    }
    let mut file = BufReader::with_capacity(READ_BUFFER, std::fs::File::open(log)?);
    if file.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        let inflated = flate2::bufread::MultiGzDecoder::new(file);
        return Ok(Box::new(BufReader::with_capacity(READ_BUFFER, inflated)));
    }
    Ok(Box::new(file))
}

fn warn_skipped(choices: &[init::Choice<'_>], io: &mut Output<'_>) {
    for c in choices {
        if let Decision::Skip(why) = &c.decision {
            io.note(format_args!(
                "warning: {} {} not written: {why}",
                c.route.method, c.route.template
            ));
        }
    }
}

fn report_reading(s: &Survey, shown: &str, opts: &Options, io: &mut Output<'_>) {
    let layouts: Vec<String> = s
        .layouts
        .iter()
        .map(|(l, n)| format!("{n} {}", l.name()))
        .collect();
    let span = match s.seconds() {
        Some(secs) => format!(" over {}", span_text(secs as u64)),
        None => " (no times: rates unknown)".to_string(),
    };
    io.note(format_args!(
        "read {shown}: {} requests ({}){span}, {} routes",
        s.requests,
        layouts.join(", "),
        s.routes.len()
    ));
    if s.bad > 0 {
        let (n, why) = s.first_bad.unwrap_or((0, ""));
        io.note(format_args!(
            "skipped {} line(s) that are not access-log lines (first: {shown}:{n}: {why})",
            s.bad
        ));
    }
    if s.other > 0 {
        io.note(format_args!(
            "note: more than {} distinct routes; {} requests of routes first seen after that are counted as \"other\"",
            opts.max_routes, s.other
        ));
    }
}

/// `2h05m`, `9m06s`, `42s`.
fn span_text(secs: u64) -> String {
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

fn print_routes(
    s: &Survey,
    choices: &[init::Choice<'_>],
    scale: f64,
    io: &mut Output<'_>,
) -> Result<(), Error> {
    let mut rows = vec![[
        "method".to_string(),
        "route".into(),
        "requests".into(),
        "share".into(),
        "rate".into(),
        "p95".into(),
        "scenario".into(),
    ]];
    for c in choices {
        let r = c.route;
        rows.push([
            r.method.clone(),
            r.template.clone(),
            r.count.to_string(),
            format!("{:.1}%", 100.0 * r.count as f64 / s.requests.max(1) as f64),
            s.rate(r.count)
                .map_or("—".into(), |x| write::rate_text(x * scale)),
            r.percentile_us(0.95)
                .map_or("—".into(), |us| format_ms(us as f64 / 1000.0)),
            match &c.decision {
                Decision::Write { name } => name.clone(),
                Decision::Skip(_) => "(not written)".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            // Numbers right-aligned.
            if (2..=5).contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i < 6 {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if i < 6 {
                line.push_str("  ");
            }
        }
        io.println(format_args!("{}", line.trim_end()))?;
    }
    Ok(())
}
