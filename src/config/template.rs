//! Templating of request parts.
//!
//! Two kinds of placeholder, resolved at different times:
//! - `${NAME}` reads an environment variable once, when the scenario is loaded. A missing
//!   variable is an error (never an empty string sent to the target). Values read this way are
//!   treated as secrets: they reach the wire and nothing else (records keep the template text).
//! - `{{ generator(args) }}` is evaluated for every request, so each request differs:
//!   `random_int(a, b)`, `random_float(a, b)`, `random_choice(x, y, ...)`, `random_string(n)`,
//!   `uuid()`.

use std::fmt::Write as _;

use rand::Rng;
use rand::rngs::SmallRng;

pub const GENERATORS: &str =
    "random_int(a, b), random_float(a, b), random_choice(x, y, ...), random_string(n), uuid()";

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
}

#[derive(Clone, Debug, PartialEq)]
pub enum GenValue {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Generator {
    pub fn generate(&self, rng: &mut SmallRng) -> GenValue {
        match self {
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
}

/// A string with `{{ generator }}` placeholders, parsed once and rendered per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
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
            parts.push(Part::Gen(parse_generator(after[..end].trim())?));
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

    /// The whole template is one generator (`"{{ random_int(1, 9) }}"`): in JSON it keeps its
    /// type, so `user_id: "{{ random_int(1, 500) }}"` sends a number.
    fn sole_generator(&self) -> Option<&Generator> {
        match self.parts.as_slice() {
            [Part::Gen(g)] => Some(g),
            _ => None,
        }
    }

    pub fn render_into(&self, rng: &mut SmallRng, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Gen(g) => g.generate(rng).write_text(out),
            }
        }
    }

    pub fn render(&self, rng: &mut SmallRng) -> String {
        let mut s = String::new();
        self.render_into(rng, &mut s);
        s
    }
}

fn parse_generator(expr: &str) -> Result<Generator, String> {
    let open = expr.find('(').ok_or_else(|| {
        format!("`{{{{ {expr} }}}}` is not a generator call; known: {GENERATORS}")
    })?;
    if !expr.ends_with(')') {
        return Err(format!("`{expr}`: missing `)`"));
    }
    let name = expr[..open].trim();
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
        "random_choice" => {
            if args.is_empty() {
                return Err(format!("`{expr}`: random_choice needs at least one option"));
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
        use serde_json::Value;
        let t = match value {
            Value::String(s) => {
                let (s, used) = expand_env(s, lookup).map_err(|e| format!("{path}: {e}"))?;
                *used_env |= used;
                let t = Template::parse(&s).map_err(|e| format!("{path}: {e}"))?;
                if t.is_static() {
                    JsonTemplate::Raw(Value::String(s).to_string())
                } else if let Some(g) = t.sole_generator() {
                    JsonTemplate::Gen(g.clone())
                } else {
                    JsonTemplate::Text(t)
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::compile(v, lookup, &format!("{path}[{i}]"), used_env))
                    .collect::<Result<Vec<_>, _>>()?;
                JsonTemplate::Array(items).collapse()
            }
            Value::Object(map) => {
                let fields = map
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            Value::String(k.clone()).to_string(),
                            Self::compile(v, lookup, &format!("{path}.{k}"), used_env)?,
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
        match self {
            JsonTemplate::Raw(s) => out.push_str(s),
            JsonTemplate::Text(t) => {
                let s = t.render(rng);
                out.push_str(&serde_json::Value::String(s).to_string());
            }
            JsonTemplate::Gen(g) => match g.generate(rng) {
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
                    item.render_into(rng, out);
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
                    v.render_into(rng, out);
                }
                out.push('}');
            }
        }
    }
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
}
