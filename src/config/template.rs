//! Templating of request parts.
//!
//! Two kinds of placeholder, resolved at different times:
//! - `${NAME}` reads an environment variable once, when the scenario is loaded. A missing
//!   variable is an error (never an empty string sent to the target). Values read this way are
//!   treated as secrets: they reach the wire and nothing else (records keep the template text).
//! - `{{ generator(args) }}` is evaluated for every request, so each request differs:
//!   `random_int(a, b)`, `random_float(a, b)`, `random_choice(x, y, ...)`, `random_string(n)`,
//!   `uuid()`, and `pick(...)` (one of the values given, or `pick(data.COLUMN)`: a random row's
//!   value in the scenario's data file).
//! - `{{ name }}` (flows, see docs/flows.md): a value captured by an earlier step or by setup,
//!   or `{{ data.COLUMN }}`, the current row of the scenario's data file. Names are resolved to
//!   slots when the scenario is loaded, so an unknown name is an error there, never at run time.
//! - In a JSON body, `{ $repeat: { min, max, item } }` becomes an array of `min..=max` items,
//!   each rendered anew.

use std::fmt::Write as _;

use rand::Rng;
use rand::rngs::SmallRng;

use super::feeder::Feeder;

pub const GENERATORS: &str = "random_int(a, b), random_float(a, b), random_choice(x, y, ...), random_string(n), uuid(), pick(x, y, ...), pick(data.COLUMN)";

/// The names a template may use besides generators: values captured by earlier steps (or by
/// setup), each a slot of the virtual user's values, and the columns of the data file.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// Slot `i` holds the value named `vars[i]`.
    pub vars: Vec<String>,
    /// The data file's columns, in file order; empty without `data:`.
    pub columns: Vec<String>,
    /// The data file, for messages.
    pub data_file: String,
    /// In a flow (or a scenario with a data file): a bare name is a value, not a generator.
    pub flow: bool,
}

impl Names {
    fn var(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v == name)
    }

    fn column(&self, name: &str) -> Result<usize, String> {
        if self.data_file.is_empty() {
            return Err(format!(
                "`data.{name}` needs a data file: add `data: {{ file: FILE.csv }}` to the scenario"
            ));
        }
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            format!(
                "{} has no column `{name}` (columns: {})",
                self.data_file,
                self.columns.join(", ")
            )
        })
    }

    fn is_empty(&self) -> bool {
        !self.flow && self.vars.is_empty() && self.data_file.is_empty()
    }
}

/// What a template's names stand for when it is rendered.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The virtual user's values, indexed by slot (`Names::vars`).
    pub vars: &'a [String],
    /// The current row of the data file.
    pub row: &'a [Box<str>],
    pub feeder: Option<&'a Feeder>,
}

impl Scope<'_> {
    /// No names: what plain `request:` scenarios render with.
    pub const EMPTY: Scope<'static> = Scope {
        vars: &[],
        row: &[],
        feeder: None,
    };
}

/// Expand `${NAME}` (and `${NAME:-default}`) from the environment. Returns the text and whether
/// any variable was used (which makes the value secret).
pub fn expand_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = false;
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!("`${{{inner}}}` is not a variable name"));
        }
        match lookup(name).or_else(|| default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "environment variable `{name}` is not set (export it, or write `${{{name}:-default}}`)"
                ));
            }
        }
        used = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

#[derive(Clone, Debug, PartialEq)]
pub enum Generator {
    RandomInt(i64, i64),
    RandomFloat(f64, f64),
    RandomChoice(Vec<GenValue>),
    RandomString(usize),
    Uuid,
    /// A random row's value in this column of the data file.
    PickColumn(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum GenValue {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Generator {
    pub fn generate(&self, rng: &mut SmallRng) -> GenValue {
        self.generate_in(rng, &Scope::EMPTY)
    }

    pub fn generate_in(&self, rng: &mut SmallRng, scope: &Scope<'_>) -> GenValue {
        match self {
            Generator::PickColumn(col) => GenValue::Str(
                scope
                    .feeder
                    .map(|f| f.pick(*col, rng).to_string())
                    .unwrap_or_default(),
            ),
            Generator::RandomInt(a, b) => GenValue::Int(rng.random_range(*a..=*b)),
            Generator::RandomFloat(a, b) => GenValue::Float(rng.random_range(*a..=*b)),
            Generator::RandomChoice(options) => options[rng.random_range(0..options.len())].clone(),
            Generator::RandomString(n) => {
                const ALNUM: &[u8] =
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                GenValue::Str(
                    (0..*n)
                        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
                        .collect(),
                )
            }
            Generator::Uuid => {
                let mut b: [u8; 16] = rng.random();
                b[6] = (b[6] & 0x0f) | 0x40; // version 4
                b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
                let mut s = String::with_capacity(36);
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        s.push('-');
                    }
                    let _ = write!(s, "{byte:02x}");
                }
                GenValue::Str(s)
            }
        }
    }
}

impl GenValue {
    fn write_text(&self, out: &mut String) {
        match self {
            GenValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            GenValue::Float(f) => {
                let _ = write!(out, "{f}");
            }
            GenValue::Str(s) => out.push_str(s),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Lit(String),
    Gen(Generator),
    /// A captured value: a slot of the virtual user's values.
    Var(usize),
    /// A column of the current data row.
    Data(usize),
}

impl Part {
    fn write(&self, rng: &mut SmallRng, scope: &Scope<'_>, out: &mut String) {
        match self {
            Part::Lit(s) => out.push_str(s),
            Part::Gen(g) => g.generate_in(rng, scope).write_text(out),
            Part::Var(i) => out.push_str(scope.vars.get(*i).map_or("", String::as_str)),
            Part::Data(i) => out.push_str(scope.row.get(*i).map_or("", |v| v)),
        }
    }
}

/// A string with `{{ generator }}` placeholders, parsed once and rendered per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        Template::parse_with(text, &Names::default())
    }

    /// Parse with `names` in scope: `{{ order_id }}`, `{{ data.user_id }}`, `pick(data.sku)`.
    pub fn parse_with(text: &str, names: &Names) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
            parts.push(parse_part(after[..end].trim(), names)?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Lit(text.to_string())],
        }
    }

    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The template is exactly one name (`"{{ order_id }}"`): in JSON a value that reads as a
    /// number is sent as one.
    fn sole_name(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Var(_) | Part::Data(_)])
    }

    /// The slots of captured values this template reads.
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(i) => Some(*i),
            _ => None,
        })
    }

    /// The whole template is one generator (`"{{ random_int(1, 9) }}"`): in JSON it keeps its
    /// type, so `user_id: "{{ random_int(1, 500) }}"` sends a number.
    fn sole_generator(&self) -> Option<&Generator> {
        match self.parts.as_slice() {
            [Part::Gen(g)] => Some(g),
            _ => None,
        }
    }

    pub fn render_into(&self, rng: &mut SmallRng, out: &mut String) {
        self.render_in(rng, &Scope::EMPTY, out);
    }

    pub fn render_in(&self, rng: &mut SmallRng, scope: &Scope<'_>, out: &mut String) {
        for part in &self.parts {
            part.write(rng, scope, out);
        }
    }

    pub fn render(&self, rng: &mut SmallRng) -> String {
        let mut s = String::new();
        self.render_into(rng, &mut s);
        s
    }
}

fn is_name(expr: &str) -> bool {
    !expr.is_empty()
        && !expr.starts_with(|c: char| c.is_ascii_digit())
        && expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// What is between `{{` and `}}`: a generator call or a name.
fn parse_part(expr: &str, names: &Names) -> Result<Part, String> {
    if !is_name(expr) || names.is_empty() && !expr.starts_with("data.") {
        return parse_generator(expr, names).map(Part::Gen);
    }
    if let Some(col) = expr.strip_prefix("data.") {
        return names.column(col).map(Part::Data);
    }
    names.var(expr).map(Part::Var).ok_or_else(|| {
        let known = if names.vars.is_empty() {
            "nothing is captured before this point".to_string()
        } else {
            format!("captured before this point: {}", names.vars.join(", "))
        };
        format!(
            "`{{{{ {expr} }}}}` is neither a captured value nor a generator call ({known}); generators: {GENERATORS}"
        )
    })
}

fn parse_generator(expr: &str, names: &Names) -> Result<Generator, String> {
    let open = expr.find('(').ok_or_else(|| {
        format!("`{{{{ {expr} }}}}` is not a generator call; known: {GENERATORS}")
    })?;
    if !expr.ends_with(')') {
        return Err(format!("`{expr}`: missing `)`"));
    }
    let name = expr[..open].trim();
    let inner = expr[open + 1..expr.len() - 1].trim();
    if name == "pick"
        && let Some(col) = inner.strip_prefix("data.")
    {
        return names
            .column(col.trim())
            .map(Generator::PickColumn)
            .map_err(|e| format!("`{expr}`: {e}"));
    }
    let args = parse_args(&expr[open + 1..expr.len() - 1]).map_err(|e| format!("`{expr}`: {e}"))?;
    let int = |v: &GenValue| match v {
        GenValue::Int(i) => Ok(*i),
        _ => Err(format!("`{expr}`: arguments must be integers")),
    };
    let num = |v: &GenValue| match v {
        GenValue::Int(i) => Ok(*i as f64),
        GenValue::Float(f) => Ok(*f),
        _ => Err(format!("`{expr}`: arguments must be numbers")),
    };
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "`{expr}`: {name} takes {n} argument(s), got {}",
                args.len()
            ))
        }
    };
    match name {
        "random_int" => {
            arity(2)?;
            let (a, b) = (int(&args[0])?, int(&args[1])?);
            if a > b {
                return Err(format!(
                    "`{expr}`: the lower bound is above the upper bound"
                ));
            }
            Ok(Generator::RandomInt(a, b))
        }
        "random_float" => {
            arity(2)?;
            let (a, b) = (num(&args[0])?, num(&args[1])?);
            if a > b || !a.is_finite() || !b.is_finite() {
                return Err(format!(
                    "`{expr}`: the lower bound is above the upper bound"
                ));
            }
            Ok(Generator::RandomFloat(a, b))
        }
        "random_choice" | "pick" => {
            if args.is_empty() {
                return Err(format!("`{expr}`: {name} needs at least one option"));
            }
            Ok(Generator::RandomChoice(args))
        }
        "random_string" => {
            arity(1)?;
            let n = int(&args[0])?;
            if !(1..=4096).contains(&n) {
                return Err(format!("`{expr}`: length must be 1..=4096"));
            }
            Ok(Generator::RandomString(n as usize))
        }
        "uuid" => {
            arity(0)?;
            Ok(Generator::Uuid)
        }
        _ => Err(format!("unknown generator `{name}`; known: {GENERATORS}")),
    }
}

fn parse_args(s: &str) -> Result<Vec<GenValue>, String> {
    let mut args = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (value, after) =
            if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
                let close = rest[1..]
                    .find(q)
                    .ok_or_else(|| "unclosed string argument".to_string())?;
                (
                    GenValue::Str(rest[1..1 + close].to_string()),
                    &rest[close + 2..],
                )
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                let tok = rest[..end].trim();
                let v = if let Ok(i) = tok.parse::<i64>() {
                    GenValue::Int(i)
                } else if let Ok(f) = tok.parse::<f64>() {
                    GenValue::Float(f)
                } else {
                    return Err(format!("`{tok}` is not a number or a quoted string"));
                };
                (v, &rest[end..])
            };
        args.push(value);
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if after.is_empty() => after,
            None => return Err(format!("expected `,` before `{after}`")),
        };
    }
    Ok(args)
}

/// A JSON body with templated strings, pre-serialised wherever nothing varies.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonTemplate {
    /// Already-serialised JSON text.
    Raw(String),
    /// A string with placeholders: rendered, then JSON-escaped.
    Text(Template),
    /// A string that is exactly one generator: rendered as a typed JSON value.
    Gen(Generator),
    /// A string that is exactly one name (`"{{ order_id }}"`): a value that reads as a JSON
    /// number is sent as a number, anything else as a string.
    Name(Template),
    /// `{ $repeat: { min, max, item } }`: an array of `min..=max` items, each rendered anew.
    Repeat {
        min: u32,
        max: u32,
        item: Box<JsonTemplate>,
    },
    Array(Vec<JsonTemplate>),
    /// Keys are stored already serialised (quoted and escaped).
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Compile a JSON value; `${ENV}` in strings is expanded now. Returns whether env was used.
    pub fn compile(
        value: &serde_json::Value,
        lookup: &dyn Fn(&str) -> Option<String>,
        path: &str,
        used_env: &mut bool,
    ) -> Result<JsonTemplate, String> {
        Self::compile_with(value, lookup, path, used_env, &Names::default())
    }

    /// `compile` with `names` in scope (captured values, data columns).
    pub fn compile_with(
        value: &serde_json::Value,
        lookup: &dyn Fn(&str) -> Option<String>,
        path: &str,
        used_env: &mut bool,
        names: &Names,
    ) -> Result<JsonTemplate, String> {
        use serde_json::Value;
        let t = match value {
            Value::String(s) => {
                let (s, used) = expand_env(s, lookup).map_err(|e| format!("{path}: {e}"))?;
                *used_env |= used;
                let t = Template::parse_with(&s, names).map_err(|e| format!("{path}: {e}"))?;
                if t.is_static() {
                    JsonTemplate::Raw(Value::String(s).to_string())
                } else if let Some(g) = t.sole_generator() {
                    JsonTemplate::Gen(g.clone())
                } else if t.sole_name() {
                    JsonTemplate::Name(t)
                } else {
                    JsonTemplate::Text(t)
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Self::compile_with(v, lookup, &format!("{path}[{i}]"), used_env, names)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                JsonTemplate::Array(items).collapse()
            }
            Value::Object(map) if map.contains_key("$repeat") => {
                let path = format!("{path}.$repeat");
                let spec = match (map.len(), &map["$repeat"]) {
                    (1, Value::Object(spec)) => spec,
                    _ => {
                        return Err(format!(
                            "{path}: write `$repeat: {{ min: 1, max: 5, item: ... }}` alone in its object"
                        ));
                    }
                };
                if let Some(k) = spec
                    .keys()
                    .find(|k| !["min", "max", "item"].contains(&k.as_str()))
                {
                    return Err(format!("{path}: unknown key `{k}` (min, max, item)"));
                }
                let bound = |k: &str| -> Result<u32, String> {
                    spec.get(k)
                        .and_then(Value::as_u64)
                        .filter(|n| *n <= 10_000)
                        .map(|n| n as u32)
                        .ok_or_else(|| format!("{path}.{k}: a whole number 0 to 10000 is required"))
                };
                let (min, max) = (bound("min")?, bound("max")?);
                if min > max {
                    return Err(format!("{path}: min ({min}) is above max ({max})"));
                }
                let item = spec
                    .get("item")
                    .ok_or_else(|| format!("{path}: `item:` is required (what each element is)"))?;
                let item =
                    Self::compile_with(item, lookup, &format!("{path}.item"), used_env, names)?;
                JsonTemplate::Repeat {
                    min,
                    max,
                    item: Box::new(item),
                }
            }
            Value::Object(map) => {
                let fields = map
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            Value::String(k.clone()).to_string(),
                            Self::compile_with(v, lookup, &format!("{path}.{k}"), used_env, names)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                JsonTemplate::Object(fields).collapse()
            }
            other => JsonTemplate::Raw(other.to_string()),
        };
        Ok(t)
    }

    /// Fold a container whose children are all raw into one raw string.
    fn collapse(self) -> JsonTemplate {
        let all_raw = match &self {
            JsonTemplate::Array(items) => items.iter().all(|i| matches!(i, JsonTemplate::Raw(_))),
            JsonTemplate::Object(f) => f.iter().all(|(_, v)| matches!(v, JsonTemplate::Raw(_))),
            _ => false,
        };
        if !all_raw {
            return self;
        }
        let mut out = String::new();
        let mut rng = <SmallRng as rand::SeedableRng>::seed_from_u64(0);
        self.render_into(&mut rng, &mut out);
        JsonTemplate::Raw(out)
    }

    pub fn is_static(&self) -> bool {
        matches!(self, JsonTemplate::Raw(_))
    }

    pub fn render_into(&self, rng: &mut SmallRng, out: &mut String) {
        self.render_in(rng, &Scope::EMPTY, out);
    }

    pub fn render_in(&self, rng: &mut SmallRng, scope: &Scope<'_>, out: &mut String) {
        match self {
            JsonTemplate::Raw(s) => out.push_str(s),
            JsonTemplate::Text(t) => {
                let mut s = String::new();
                t.render_in(rng, scope, &mut s);
                out.push_str(&serde_json::Value::String(s).to_string());
            }
            JsonTemplate::Name(t) => {
                let mut s = String::new();
                t.render_in(rng, scope, &mut s);
                if is_json_number(&s) {
                    out.push_str(&s);
                } else {
                    out.push_str(&serde_json::Value::String(s).to_string());
                }
            }
            JsonTemplate::Repeat { min, max, item } => {
                let n = rng.random_range(*min..=*max);
                out.push('[');
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render_in(rng, scope, out);
                }
                out.push(']');
            }
            JsonTemplate::Gen(g) => match g.generate_in(rng, scope) {
                GenValue::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                GenValue::Float(f) => out.push_str(&serde_json::Value::from(f).to_string()),
                GenValue::Str(s) => out.push_str(&serde_json::Value::String(s).to_string()),
            },
            JsonTemplate::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render_in(rng, scope, out);
                }
                out.push(']');
            }
            JsonTemplate::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.render_in(rng, scope, out);
                }
                out.push('}');
            }
        }
    }
}

/// `-12`, `3.5`, `1e3`: a value sent as a JSON number (no leading zeros, as JSON requires).
fn is_json_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0') && !digits[1..].starts_with('.'))
        && s.len() <= 20
        && serde_json::from_str::<serde_json::Number>(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_TOKEN" => Some("s3cret".into()),
            "HOST" => Some("example".into()),
            _ => None,
        }
    }

    #[test]
    fn env_expansion_marks_secrets_and_refuses_missing_vars() {
        assert_eq!(expand_env("plain", &env).unwrap(), ("plain".into(), false));
        assert_eq!(
            expand_env("Bearer ${API_TOKEN}", &env).unwrap(),
            ("Bearer s3cret".into(), true)
        );
        assert_eq!(expand_env("${NOPE:-x}", &env).unwrap().0, "x");
        let err = expand_env("Bearer ${MISSING}", &env).unwrap_err();
        assert!(err.contains("`MISSING` is not set"), "{err}");
        assert!(expand_env("${1BAD}", &env).is_err());
        assert!(expand_env("${OPEN", &env).is_err());
    }

    #[test]
    fn generators_vary_and_stay_in_range() {
        let t = Template::parse("/api/v1/products/{{ random_int(1, 2000) }}?x=1").unwrap();
        assert!(!t.is_static());
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let s = t.render(&mut rng);
            let id: i64 = s
                .trim_start_matches("/api/v1/products/")
                .trim_end_matches("?x=1")
                .parse()
                .unwrap();
            assert!((1..=2000).contains(&id));
            seen.insert(id);
        }
        assert!(seen.len() > 100, "requests should differ: {}", seen.len());
        let u = Template::parse("{{uuid()}}").unwrap().render(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let c = Template::parse("{{ random_choice('a', \"b\", 3) }}").unwrap();
        for _ in 0..20 {
            assert!(["a", "b", "3"].contains(&c.render(&mut rng).as_str()));
        }
    }

    #[test]
    fn bad_generators_say_what_is_wrong() {
        for (text, want) in [
            ("{{ rand_int(1, 2) }}", "unknown generator `rand_int`"),
            ("{{ random_int(5, 1) }}", "lower bound"),
            ("{{ random_int(1) }}", "takes 2"),
            ("{{ random_int(1, 2)", "unclosed"),
            ("{{ random_int(a, 2) }}", "not a number"),
            ("{{ uuid }}", "not a generator call"),
        ] {
            let err = Template::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn json_keeps_types_and_prerenders_static_parts() {
        let v: serde_json::Value = serde_json::json!({
            "user_id": "{{ random_int(1, 500) }}",
            "note": "order {{ random_int(1, 9) }}",
            "token": "${API_TOKEN}",
            "items": [ { "product_id": "{{ random_int(1, 2000) }}", "qty": 2 } ],
            "fixed": { "a": [1, 2, "x"] }
        });
        let mut used = false;
        let t = JsonTemplate::compile(&v, &env, "request.json", &mut used).unwrap();
        assert!(used);
        let JsonTemplate::Object(fields) = &t else {
            panic!("object expected")
        };
        let fixed = fields.iter().find(|(k, _)| k == "\"fixed\"").unwrap();
        assert!(fixed.1.is_static());
        let mut rng = SmallRng::seed_from_u64(1);
        let mut out = String::new();
        t.render_into(&mut rng, &mut out);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(back["user_id"].is_i64());
        assert!(back["items"][0]["product_id"].is_i64());
        assert_eq!(back["items"][0]["qty"], 2);
        assert!(back["note"].as_str().unwrap().starts_with("order "));
        assert_eq!(back["token"], "s3cret");
        assert_eq!(back["fixed"], serde_json::json!({"a": [1, 2, "x"]}));
    }

    #[test]
    fn json_template_errors_name_the_path() {
        let v = serde_json::json!({ "items": [ { "id": "{{ nope() }}" } ] });
        let err = JsonTemplate::compile(&v, &env, "request.json", &mut false).unwrap_err();
        assert!(err.starts_with("request.json.items[0].id:"), "{err}");
    }

    #[test]
    fn names_pick_and_repeat() {
        let names = Names {
            vars: vec!["order_id".into()],
            columns: vec!["sku".into()],
            data_file: "skus.csv".into(),
            flow: true,
        };
        let t = Template::parse_with("/o/{{ order_id }}/{{ data.sku }}", &names).unwrap();
        let vars = vec!["42".to_string()];
        let row: Vec<Box<str>> = vec!["A-1".into()];
        let scope = Scope {
            vars: &vars,
            row: &row,
            feeder: None,
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let mut out = String::new();
        t.render_in(&mut rng, &scope, &mut out);
        assert_eq!(out, "/o/42/A-1");
        let err = Template::parse_with("{{ nope }}", &names).unwrap_err();
        assert!(
            err.contains("captured before this point: order_id"),
            "{err}"
        );
        let err = Template::parse_with("{{ data.price }}", &names).unwrap_err();
        assert!(err.contains("no column `price`"), "{err}");
        let err = Template::parse("{{ data.x }}").unwrap_err();
        assert!(err.contains("needs a data file"), "{err}");
        let p = Template::parse("{{ pick('a', 'b') }}").unwrap();
        for _ in 0..20 {
            assert!(["a", "b"].contains(&p.render(&mut rng).as_str()));
        }
        assert!(Template::parse("{{ pick(data.sku) }}").is_err());
        assert!(Template::parse_with("{{ pick(data.sku) }}", &names).is_ok());

        // A sole name is sent as a JSON number when it reads as one, else as a string.
        let v = serde_json::json!({
            "id": "{{ order_id }}",
            "lines": { "$repeat": { "min": 3, "max": 5, "item": { "q": "{{ random_int(1, 3) }}" } } }
        });
        let t = JsonTemplate::compile_with(&v, &env, "json", &mut false, &names).unwrap();
        for _ in 0..20 {
            let mut out = String::new();
            t.render_in(&mut rng, &scope, &mut out);
            let back: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(back["id"], 42);
            let n = back["lines"].as_array().unwrap().len();
            assert!((3..=5).contains(&n), "{out}");
        }
        let vars = vec!["tok-1".to_string()];
        let scope = Scope {
            vars: &vars,
            ..scope
        };
        let mut out = String::new();
        t.render_in(&mut rng, &scope, &mut out);
        assert!(out.starts_with("{\"id\":\"tok-1\""), "{out}");
        for (bad, want) in [
            (
                serde_json::json!({ "$repeat": { "min": 5, "max": 1, "item": 1 } }),
                "above max",
            ),
            (
                serde_json::json!({ "$repeat": { "min": 1, "max": 2 } }),
                "item",
            ),
            (
                serde_json::json!({ "$repeat": { "min": 1, "max": 2, "item": 1 }, "x": 1 }),
                "alone",
            ),
        ] {
            let err = JsonTemplate::compile(&bad, &env, "json", &mut false).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
        for (s, n) in [
            ("42", true),
            ("-3.5", true),
            ("007", false),
            ("1e3", true),
            ("abc", false),
            ("", false),
        ] {
            assert_eq!(is_json_number(s), n, "{s}");
        }
    }
}
