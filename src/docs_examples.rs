//! The docs cannot drift from the code: every YAML example in `README.md` and `docs/*.md` that
//! is a scenario (a `suite.yml`, an HTTP scenario, an LLM scenario) is loaded by gate's own config
//! loader, and every relative link resolves to a file (and its `#anchor` to a heading).
//!
//! A block is the file its first line names (`# scenarios/llm/compare.yml`); a block that names
//! none is a scenario in `scenarios/`. Each page's blocks are written where they say, into a
//! temporary copy of the repository's `scenarios/` (so `prices/…` and the `suite.yml` beside a
//! scenario are there), then loaded as `gate run --suite PATH` loads them: a `suite.yml` with the
//! scenario files beside it, a scenario with the `suite.yml` beside it.
//!
//! A YAML block that is not a scenario (workflow YAML, Kubernetes, a price table) says so with
//! `<!-- not-a-scenario -->` on the line before its fence, or in its fence info
//! (```` ```yaml workflow ````). An unknown word in the fence info is an error rather than a skip,
//! so a typo cannot silently take an example out of the test.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::config::{self, ConfigError, Overrides, Plan, SUITE_FILE};

/// Marks the YAML block after it as something other than a scenario.
const NOT_A_SCENARIO: &str = "<!-- not-a-scenario -->";
/// Fence info words after `yaml` that mark a block as something other than a scenario.
const OTHER_YAML: &[&str] = &["workflow", "kubernetes", "prices", "not-a-scenario"];
/// Environment variables the examples read through `${NAME}`; the loader gets these values.
const EXAMPLE_ENV: &[&str] = &[
    "API_TOKEN",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GATEWAY_KEY",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md` and every `docs/*.md`, relative to the repository root, with their text.
fn pages() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(root().join(&n))
                .unwrap_or_else(|e| panic!("cannot read {n}: {e}"));
            (n, text)
        })
        .collect()
}

/// A fenced code block: the 1-based line of its opening fence, its info string, and its body.
struct Fenced {
    line: usize,
    info: String,
    marked_other: bool,
    body: String,
}

/// Every fenced code block of a page, and the lines outside them (1-based line, text).
fn split_fences(text: &str) -> (Vec<Fenced>, Vec<(usize, &str)>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(char, usize, usize, Fenced)> = None;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let fence = trimmed
            .chars()
            .next()
            .filter(|c| *c == '`' || *c == '~')
            .map(|c| (c, trimmed.chars().take_while(|x| *x == c).count()))
            .filter(|(_, n)| *n >= 3);
        match (&mut open, fence) {
            (Some((c, n, _, _)), Some((fc, fnum)))
                if fc == *c && fnum >= *n && trimmed[fnum..].trim().is_empty() =>
            {
                let (_, _, _, block) = open.take().expect("a block is open");
                blocks.push(block);
            }
            (Some((_, _, strip, block)), _) => {
                let strip = (*strip).min(line.len() - line.trim_start().len());
                block.body.push_str(&line[strip..]);
                block.body.push('\n');
            }
            (None, Some((c, n))) => {
                open = Some((
                    c,
                    n,
                    indent,
                    Fenced {
                        line: i + 1,
                        info: trimmed[n..].trim().to_string(),
                        marked_other: previous.trim() == NOT_A_SCENARIO,
                        body: String::new(),
                    },
                ));
            }
            (None, None) => prose.push((i + 1, line)),
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    (blocks, prose)
}

/// A YAML block meant to be loaded as a scenario (or suite.yml), with where it goes.
struct Example {
    line: usize,
    path: String,
    text: String,
}

/// The page's YAML blocks that must load, and the problems found just reading the fences.
fn examples(page: &str, text: &str) -> (Vec<Example>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for block in split_fences(text).0 {
        let mut words = block.info.split_whitespace();
        if !matches!(words.next(), Some("yaml" | "yml")) || block.marked_other {
            continue;
        }
        let rest: Vec<&str> = words.collect();
        if let Some(unknown) = rest.iter().find(|w| !OTHER_YAML.contains(w)) {
            problems.push(format!(
                "{page}:{}: fence info `{}`: `{unknown}` is not a kind of YAML this test knows; \
                 a scenario block is plain ```yaml, anything else is ```yaml {} or has `{NOT_A_SCENARIO}` \
                 on the line before",
                block.line,
                block.info,
                OTHER_YAML.join("|"),
            ));
            continue;
        }
        if !rest.is_empty() {
            continue;
        }
        let named = block
            .body
            .lines()
            .next()
            .and_then(|l| l.trim().strip_prefix('#'))
            .map(str::trim)
            .filter(|p| {
                (p.ends_with(".yml") || p.ends_with(".yaml")) && !p.contains(char::is_whitespace)
            });
        let path = match named {
            Some(p)
                if Path::new(p)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))) =>
            {
                p.to_string()
            }
            Some(p) => {
                problems.push(format!(
                    "{page}:{}: the block names `{p}`; give a path relative to the repository, without `..`",
                    block.line
                ));
                continue;
            }
            None => format!("scenarios/docs-example-{}.yml", block.line),
        };
        found.push(Example {
            line: block.line,
            path,
            text: block.body,
        });
    }
    (found, problems)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list scenarios/") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a scenario file");
        }
    }
}

/// Load a suite directory or one scenario file as `gate run --suite PATH` would, with the
/// examples' environment variables set.
fn load(path: &Path) -> Result<Plan, ConfigError> {
    let lookup = |name: &str| {
        EXAMPLE_ENV
            .contains(&name)
            .then(|| format!("docs-example-{}", name.to_lowercase()))
    };
    let (suite, scenarios) = config::read_suite(path)?;
    let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("suite");
    config::build_plan(
        name,
        suite.as_ref(),
        &scenarios,
        &Overrides::default(),
        &lookup,
    )
}

/// Load every scenario example of one page; one line per block that does not load.
/// Each block is loaded in a fresh copy of `scenarios/` holding the page's `suite.yml` blocks
/// (a page's defaults) and the block itself, so one broken scenario is reported once.
/// Returns how many blocks were loaded, and the failures.
fn check_examples(page: &str, text: &str) -> (usize, Vec<String>) {
    let (examples, mut failures) = examples(page, text);
    let is_suite = |ex: &Example| Path::new(&ex.path).file_name() == Some(SUITE_FILE.as_ref());
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for ex in &examples {
        match seen.iter().find(|(p, _)| *p == ex.path) {
            Some((_, first)) => failures.push(format!(
                "{page}:{}: the block is `{}` again (first at line {first}); one block per file on a page",
                ex.line, ex.path
            )),
            None => seen.push((&ex.path, ex.line)),
        }
    }
    for ex in &examples {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        copy_dir(&root().join("scenarios"), &tmp.path().join("scenarios"));
        for placed in examples.iter().filter(|o| is_suite(o)).chain([ex]) {
            let at = tmp.path().join(&placed.path);
            std::fs::create_dir_all(at.parent().expect("a file has a parent"))
                .expect("create the example's directory");
            std::fs::write(&at, &placed.text).expect("write the example");
        }
        let at = tmp.path().join(&ex.path);
        let target = if is_suite(ex) {
            at.parent()
                .expect("suite.yml is in a directory")
                .to_path_buf()
        } else {
            at
        };
        if let Err(e) = load(&target) {
            let shown = format!("{}/", tmp.path().display());
            failures.push(format!(
                "{page}:{}: the ```yaml block (as {}) does not load: {}{}",
                ex.line,
                ex.path,
                e.to_string().replace(&shown, ""),
                e.hint.map(|h| format!(" ({h})")).unwrap_or_default(),
            ));
        }
    }
    (examples.len(), failures)
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`), spaces to
/// `-`. A repeated heading gets `-1`, `-2`, … (see `anchors`).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every heading anchor of a page.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in split_fences(text).1 {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// The text of a line with its inline code spans removed (links in code are not links).
fn without_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// Every link destination in the prose of a page: `[text](dest)` and `![alt](dest)`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (line_no, line) in split_fences(text).1 {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let dest = after[..end]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == '<' || c == '>');
            found.push((line_no, dest.to_string()));
            rest = &after[end..];
        }
    }
    found
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Every relative link of one page that does not resolve, one line each.
fn check_links(page: &str, text: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let dir = Path::new(page).parent().unwrap_or(Path::new(""));
    for (line, dest) in links(text) {
        if dest.is_empty() {
            failures.push(format!("{page}:{line}: a link with no destination"));
            continue;
        }
        if dest.contains("://") || dest.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = match dest.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (dest.as_str(), None),
        };
        let target = if file.is_empty() {
            PathBuf::from(page)
        } else {
            normalize(&dir.join(file))
        };
        let shown = target.display().to_string();
        if !file.is_empty() && !root().join(&target).exists() {
            failures.push(format!("{page}:{line}: `{dest}`: {shown} does not exist"));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if target.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let heads = if file.is_empty() {
            anchors(text)
        } else {
            anchors(&std::fs::read_to_string(root().join(&target)).unwrap_or_default())
        };
        if !heads.contains(anchor) {
            failures.push(format!(
                "{page}:{line}: `{dest}`: {shown} has no heading with the anchor `#{anchor}`"
            ));
        }
    }
    failures
}

#[test]
fn every_scenario_example_in_the_docs_loads() {
    let mut loaded = 0;
    let mut failures = Vec::new();
    for (page, text) in pages() {
        let (n, f) = check_examples(&page, &text);
        loaded += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} example(s) in the docs do not load:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The pages hold a suite.yml, an HTTP scenario and an LLM scenario: finding fewer means the
    // fence reading is broken, not that the docs are fine.
    assert!(
        loaded >= 3,
        "only {loaded} scenario example(s) found in the docs"
    );
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let failures: Vec<String> = pages()
        .iter()
        .flat_map(|(page, text)| check_links(page, text))
        .collect();
    assert!(
        failures.is_empty(),
        "{} broken link(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_docs_index_links_every_page() {
    let index = std::fs::read_to_string(root().join("docs/README.md")).expect("docs/README.md");
    let linked: HashSet<String> = links(&index).into_iter().map(|(_, d)| d).collect();
    for (page, _) in pages() {
        let Some(name) = page.strip_prefix("docs/") else {
            continue;
        };
        if name != "README.md" {
            assert!(linked.contains(name), "docs/README.md does not link {name}");
        }
    }
}

#[test]
fn a_broken_example_is_reported_with_its_page_line_and_reason() {
    let page = "\
# A page

```yaml
# scenarios/suite.yml
name: s
target: http://127.0.0.1:8080
```

```yaml
name: broken
request: { url: /x }
load: { users: 2, duration: 60 seconds }
```

<!-- not-a-scenario -->
```yaml
on: pull_request
```

```yaml workflow
jobs: {}
```

```yaml wokflow
jobs: {}
```

```yaml
# scenarios/llm/keyless.yml
name: keyless
llm:
  provider: anthropic
  api_key: ${NOT_IN_THE_EXAMPLES}
  models: [m]
  prompt: hi
```
";
    let (loaded, failures) = check_examples("docs/x.md", page);
    assert_eq!(loaded, 3, "{failures:?}");
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures[0].starts_with("docs/x.md:24: fence info `yaml wokflow`"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].starts_with("docs/x.md:9: the ```yaml block (as scenarios/docs-example-9.yml)")
            && failures[1].contains("scenarios/docs-example-9.yml:3:")
            && failures[1].contains("load.duration: `60 seconds` is not a duration"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2].starts_with("docs/x.md:28:")
            && failures[2].contains("`NOT_IN_THE_EXAMPLES` is not set"),
        "{}",
        failures[2]
    );
}

#[test]
fn a_broken_link_is_reported_with_its_page_and_line() {
    let page = "\
# Top

See [the exit codes](../README.md#exit-codes), [top](#top) and `[code](nowhere.md)`.
[gone](nowhere.md), [bad anchor](ci.md#no-such-heading), [web](https://example.com/x.md).
[pending](reliability.md)
```
[in a fence](nowhere-either.md)
```
";
    let failures = check_links("docs/x.md", page);
    assert_eq!(
        failures,
        vec![
            "docs/x.md:4: `nowhere.md`: docs/nowhere.md does not exist".to_string(),
            "docs/x.md:4: `ci.md#no-such-heading`: docs/ci.md has no heading with the anchor `#no-such-heading`"
                .to_string(),
        ]
    );
}

#[test]
fn anchors_follow_github() {
    let page = "# On pull requests (`gate ci`)\n## The JSON document (`--json`)\n## Notes\n## Notes\n```\n# not a heading\n```\n";
    let a = anchors(page);
    for want in [
        "on-pull-requests-gate-ci",
        "the-json-document---json",
        "notes",
        "notes-1",
    ] {
        assert!(a.contains(want), "{want} not in {a:?}");
    }
    assert!(!a.contains("not-a-heading"));
}
