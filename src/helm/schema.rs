//! `values.schema.json`, validated as Helm 3.17 validates it
//! (xeipuuv/gojsonschema): draft-04 to draft-07 keywords, errors worded
//! and ordered as gojsonschema words them (`replicaCount: Invalid type.
//! Expected: number, given: string`), one `- …` line each.
//!
//! Schemas are chart input: only `$ref`s inside the schema (`#/…`) are
//! followed. A `$ref` to anything else — a URL, another file — is an error
//! naming it: nothing is fetched while rendering.

use std::fmt::Write as _;

use super::json;
use super::value::{MapKind, Value};

/// The deepest `$ref` chain or nesting followed.
const MAX_DEPTH: usize = 256;

/// Validate values against a schema: `Ok`, or gojsonschema's errors as
/// Helm prints them (`- FIELD: DESCRIPTION\n` each).
pub fn validate(schema: &[u8], values: &Value) -> Result<(), String> {
    let text = String::from_utf8_lossy(schema);
    let root = json::decode(&text).map_err(|e| format!("- (root): invalid values.schema.json: {e}\n"))?;
    if let Some(r) = external_ref(&root, 0) {
        return Err(format!(
            "- (root): values.schema.json refers to {r:?}: mooring reads only references inside the schema (\"#/…\") and fetches nothing; inline it\n"
        ));
    }
    let data = to_json_data(values);
    let v = Validator { root: &root };
    let mut result = Outcome::default();
    v.recurse(&root, &data, &mut result, &Ctx::root(), 0);
    if result.errors.is_empty() {
        return Ok(());
    }
    let mut out = String::new();
    for e in &result.errors {
        let _ = writeln!(out, "- {e}");
    }
    Err(out)
}

fn external_ref(v: &Value, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        Value::Map(m) => {
            for (k, x) in m.snapshot() {
                if &*k == "$ref"
                    && let Value::Str(r) = &x
                    && !r.starts_with('#')
                {
                    return Some(r.to_string());
                }
                if let Some(r) = external_ref(&x, depth + 1) {
                    return Some(r);
                }
            }
            None
        }
        Value::List(l) => l.items.iter().find_map(|x| external_ref(x, depth + 1)),
        _ => None,
    }
}

/// The values as gojsonschema sees them: through YAML and JSON, so that a
/// whole float is an integer.
#[derive(Debug, Clone)]
enum Data {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    Array(Vec<Data>),
    Object(Vec<(String, Data)>),
}

fn to_json_data(v: &Value) -> Data {
    match v {
        Value::Nil => Data::Null,
        Value::Bool(b) => Data::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Data::Number(*i as f64),
        Value::Float(f) => Data::Number(*f),
        Value::Str(s) => Data::Str(s.to_string()),
        Value::Bytes(b) => Data::Str(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b,
        )),
        Value::List(l) => Data::Array(l.items.iter().map(to_json_data).collect()),
        Value::Map(m) => Data::Object(
            m.snapshot()
                .into_iter()
                .map(|(k, x)| (k.to_string(), to_json_data(&x)))
                .collect(),
        ),
        Value::Struct(_) => match json::encode(v, json::Style::default())
            .ok()
            .and_then(|t| json::decode(&t).ok())
        {
            Some(x) => to_json_data(&x),
            None => Data::Null,
        },
    }
}

impl Data {
    fn type_name(&self) -> &'static str {
        match self {
            Data::Null => "null",
            Data::Bool(_) => "boolean",
            Data::Number(f) if f.fract() == 0.0 => "integer",
            Data::Number(_) => "number",
            Data::Str(_) => "string",
            Data::Array(_) => "array",
            Data::Object(_) => "object",
        }
    }

    /// gojsonschema's `marshalWithoutNumber`: the JSON text, for `enum`,
    /// `const` and `uniqueItems`.
    fn canonical(&self) -> String {
        match self {
            Data::Null => "null".into(),
            Data::Bool(b) => b.to_string(),
            Data::Number(f) => json::float(*f).unwrap_or_default(),
            Data::Str(s) => {
                let mut out = String::new();
                json::write_string(&mut out, s, true);
                out
            }
            Data::Array(items) => format!(
                "[{}]",
                items.iter().map(Data::canonical).collect::<Vec<_>>().join(",")
            ),
            Data::Object(pairs) => {
                let mut sorted: Vec<&(String, Data)> = pairs.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                let parts: Vec<String> = sorted
                    .iter()
                    .map(|(k, v)| {
                        let mut key = String::new();
                        json::write_string(&mut key, k, true);
                        format!("{key}:{}", v.canonical())
                    })
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
        }
    }
}

/// A path in the values: `(root)`, `(root).a.0.b`.
#[derive(Clone)]
struct Ctx {
    path: String,
}

impl Ctx {
    fn root() -> Ctx {
        Ctx {
            path: "(root)".into(),
        }
    }

    fn child(&self, name: &str) -> Ctx {
        Ctx {
            path: format!("{}.{name}", self.path),
        }
    }

    /// gojsonschema's `Field()`: without the `(root).` prefix.
    fn field(&self) -> &str {
        self.path.strip_prefix("(root).").unwrap_or(&self.path)
    }
}

#[derive(Default)]
struct Outcome {
    errors: Vec<String>,
    score: usize,
}

impl Outcome {
    fn error(&mut self, ctx: &Ctx, description: String) {
        self.errors.push(format!("{}: {description}", ctx.field()));
    }

    fn merge(&mut self, other: Outcome) {
        self.errors.extend(other.errors);
        self.score += other.score;
    }

    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

fn get<'a>(schema: &'a Value, key: &str) -> Option<Value> {
    let _: &'a Value = schema;
    match schema {
        Value::Map(m) if m.kind() == MapKind::Any => m.get(key),
        _ => None,
    }
}

fn num(v: &Option<Value>) -> Option<f64> {
    match v {
        Some(Value::Float(f)) => Some(*f),
        Some(Value::Int(i) | Value::Int64(i)) => Some(*i as f64),
        _ => None,
    }
}

/// A number as gojsonschema prints limits (`big.Float`, 10 digits).
fn big(f: f64) -> String {
    super::gofmt::format_float(f, 'g', Some(10))
}

struct Validator<'a> {
    root: &'a Value,
}

impl Validator<'_> {
    fn resolve(&self, r: &str) -> Option<Value> {
        let pointer = r.strip_prefix('#')?;
        let mut cur = self.root.clone();
        if pointer.is_empty() {
            return Some(cur);
        }
        for part in pointer.strip_prefix('/')?.split('/') {
            let part = part.replace("~1", "/").replace("~0", "~");
            let part = percent_decode(&part);
            cur = match &cur {
                Value::Map(m) => m.get(&part)?,
                Value::List(l) => l.items.get(part.parse::<usize>().ok()?)?.clone(),
                _ => return None,
            };
        }
        Some(cur)
    }

    /// `validateRecursive`.
    fn recurse(&self, schema: &Value, data: &Data, out: &mut Outcome, ctx: &Ctx, depth: usize) {
        if depth > MAX_DEPTH {
            out.error(ctx, "Internal Error schema nested too deeply".into());
            return;
        }
        match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                out.error(ctx, "False always fails validation".into());
                return;
            }
            Value::Map(_) => {}
            _ => return,
        }
        if let Some(Value::Str(r)) = get(schema, "$ref") {
            match self.resolve(&r) {
                Some(target) => self.recurse(&target, data, out, ctx, depth + 1),
                None => out.error(ctx, format!("Internal Error unresolvable reference {r}")),
            }
            return;
        }
        let types: Vec<String> = match get(schema, "type") {
            Some(Value::Str(t)) => vec![t.to_string()],
            Some(Value::List(l)) => l
                .items
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let typed = !types.is_empty();
        let has = |t: &str| types.iter().any(|x| x == t);
        let expected = if types.len() == 1 {
            types[0].clone()
        } else {
            format!("[{}]", types.join(","))
        };
        let given = data.type_name();
        let type_ok = match data {
            Data::Null => has("null"),
            Data::Number(_) => has("number") || (given == "integer" && has("integer")),
            Data::Bool(_) => has("boolean"),
            Data::Str(_) => has("string"),
            Data::Array(_) => has("array"),
            Data::Object(_) => has("object"),
        };
        if typed && !type_ok {
            out.error(ctx, format!("Invalid type. Expected: {expected}, given: {given}"));
            return;
        }
        self.composite(schema, data, out, ctx, depth);
        match data {
            Data::Number(_) | Data::Bool(_) | Data::Str(_) | Data::Null => {
                if !matches!(data, Data::Null) {
                    self.number(schema, data, out, ctx);
                }
                self.common(schema, data, out, ctx);
                if !matches!(data, Data::Null) {
                    self.string(schema, data, out, ctx);
                }
            }
            Data::Array(items) => {
                self.array(schema, items, out, ctx, depth);
                self.common(schema, data, out, ctx);
            }
            Data::Object(pairs) => {
                self.object(schema, pairs, out, ctx, depth);
                self.common(schema, data, out, ctx);
                if let Some(Value::Map(props)) = get(schema, "properties") {
                    for (name, sub) in props.snapshot() {
                        if let Some((_, value)) = pairs.iter().find(|(k, _)| **k == *name) {
                            self.recurse(&sub, value, out, &ctx.child(&name), depth + 1);
                        }
                    }
                }
            }
        }
        out.score += 1;
    }

    fn sub(&self, schema: &Value, data: &Data, ctx: &Ctx, depth: usize) -> Outcome {
        let mut o = Outcome::default();
        self.recurse(schema, data, &mut o, ctx, depth + 1);
        o
    }

    /// `validateSchema`: anyOf, oneOf, allOf, not, dependencies, if.
    fn composite(&self, schema: &Value, data: &Data, out: &mut Outcome, ctx: &Ctx, depth: usize) {
        if let Some(Value::List(any)) = get(schema, "anyOf")
            && !any.items.is_empty()
        {
            let outcomes = any.items.iter().map(|s| self.sub(s, data, ctx, depth));
            any_valid(outcomes, out, ctx, "Must validate at least one schema (anyOf)");
        }
        if let Some(Value::List(one)) = get(schema, "oneOf")
            && !one.items.is_empty()
        {
            let mut n = 0;
            let mut best: Option<Outcome> = None;
            for s in &one.items {
                let r = self.sub(s, data, ctx, depth);
                if r.valid() {
                    n += 1;
                } else if n == 0 && best.as_ref().is_none_or(|b| r.score > b.score) {
                    best = Some(r);
                }
            }
            if n != 1 {
                out.error(ctx, "Must validate one and only one schema (oneOf)".into());
                if n == 0
                    && let Some(b) = best
                {
                    out.merge(b);
                }
            }
        }
        if let Some(Value::List(all)) = get(schema, "allOf")
            && !all.items.is_empty()
        {
            let mut n = 0;
            for s in &all.items {
                let r = self.sub(s, data, ctx, depth);
                if r.valid() {
                    n += 1;
                }
                out.merge(r);
            }
            if n != all.items.len() {
                out.error(ctx, "Must validate all the schemas (allOf)".into());
            }
        }
        if let Some(not) = get(schema, "not")
            && self.sub(&not, data, ctx, depth).valid()
        {
            out.error(ctx, "Must not validate the schema (not)".into());
        }
        if let (Some(Value::Map(deps)), Data::Object(pairs)) = (get(schema, "dependencies"), data) {
            for (key, _) in pairs {
                match deps.get(key) {
                    Some(Value::List(l)) => {
                        for d in &l.items {
                            if let Some(d) = d.as_str()
                                && !pairs.iter().any(|(k, _)| k == d)
                            {
                                out.error(ctx, format!("Has a dependency on {d}"));
                            }
                        }
                    }
                    Some(s @ Value::Map(_)) => self.recurse(&s, data, out, ctx, depth + 1),
                    _ => {}
                }
            }
        }
        if let Some(cond) = get(schema, "if") {
            let r = self.sub(&cond, data, ctx, depth);
            if r.valid() {
                if let Some(then) = get(schema, "then") {
                    let t = self.sub(&then, data, ctx, depth);
                    if !t.valid() {
                        out.error(ctx, "Must validate \"then\" as \"if\" was valid".into());
                        out.merge(t);
                    }
                }
            } else if let Some(els) = get(schema, "else") {
                let e = self.sub(&els, data, ctx, depth);
                if !e.valid() {
                    out.error(ctx, "Must validate \"else\" as \"if\" was not valid".into());
                    out.merge(e);
                }
            }
        }
        out.score += 1;
    }

    /// `validateCommon`: const and enum.
    fn common(&self, schema: &Value, data: &Data, out: &mut Outcome, ctx: &Ctx) {
        if let Some(c) = get(schema, "const") {
            let want = to_json_data(&c).canonical();
            if data.canonical() != want {
                out.error(ctx, format!("{} does not match: {want}", ctx.field()));
            }
        }
        if let Some(Value::List(e)) = get(schema, "enum")
            && !e.items.is_empty()
        {
            let allowed: Vec<String> = e.items.iter().map(|x| to_json_data(x).canonical()).collect();
            if !allowed.contains(&data.canonical()) {
                out.error(
                    ctx,
                    format!(
                        "{} must be one of the following: {}",
                        ctx.field(),
                        allowed.join(", ")
                    ),
                );
            }
        }
        out.score += 1;
    }

    fn number(&self, schema: &Value, data: &Data, out: &mut Outcome, ctx: &Ctx) {
        let Data::Number(f) = data else { return };
        if let Some(m) = num(&get(schema, "multipleOf"))
            && m != 0.0
        {
            let q = f / m;
            if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                out.error(ctx, format!("Must be a multiple of {}", big(m)));
            }
        }
        let draft4_excl_max = matches!(get(schema, "exclusiveMaximum"), Some(Value::Bool(true)));
        let draft4_excl_min = matches!(get(schema, "exclusiveMinimum"), Some(Value::Bool(true)));
        if let Some(max) = num(&get(schema, "maximum")) {
            if draft4_excl_max {
                if *f >= max {
                    out.error(ctx, format!("Must be less than {}", big(max)));
                }
            } else if *f > max {
                out.error(ctx, format!("Must be less than or equal to {}", big(max)));
            }
        }
        if let Some(max) = num(&get(schema, "exclusiveMaximum"))
            && *f >= max
        {
            out.error(ctx, format!("Must be less than {}", big(max)));
        }
        if let Some(min) = num(&get(schema, "minimum")) {
            if draft4_excl_min {
                if *f <= min {
                    out.error(ctx, format!("Must be greater than {}", big(min)));
                }
            } else if *f < min {
                out.error(ctx, format!("Must be greater than or equal to {}", big(min)));
            }
        }
        if let Some(min) = num(&get(schema, "exclusiveMinimum"))
            && *f <= min
        {
            out.error(ctx, format!("Must be greater than {}", big(min)));
        }
        out.score += 1;
    }

    fn string(&self, schema: &Value, data: &Data, out: &mut Outcome, ctx: &Ctx) {
        let Data::Str(s) = data else { return };
        let len = s.chars().count() as f64;
        if let Some(min) = num(&get(schema, "minLength"))
            && len < min
        {
            out.error(
                ctx,
                format!("String length must be greater than or equal to {}", min as i64),
            );
        }
        if let Some(max) = num(&get(schema, "maxLength"))
            && len > max
        {
            out.error(
                ctx,
                format!("String length must be less than or equal to {}", max as i64),
            );
        }
        if let Some(Value::Str(p)) = get(schema, "pattern") {
            match regex::Regex::new(&p) {
                Ok(re) if !re.is_match(s) => out.error(ctx, format!("Does not match pattern '{p}'")),
                Ok(_) => {}
                Err(_) => out.error(ctx, format!("Invalid regex pattern '{p}'")),
            }
        }
        if let Some(Value::Str(f)) = get(schema, "format")
            && !format_ok(&f, s)
        {
            out.error(ctx, format!("Does not match format '{f}'"));
        }
        out.score += 1;
    }

    fn array(&self, schema: &Value, items: &[Data], out: &mut Outcome, ctx: &Ctx, depth: usize) {
        match get(schema, "items") {
            Some(Value::List(list)) => {
                for (i, (s, x)) in list.items.iter().zip(items).enumerate() {
                    let r = self.sub(s, x, &ctx.child(&i.to_string()), depth);
                    out.merge(r);
                }
                if list.items.len() < items.len() {
                    match get(schema, "additionalItems") {
                        Some(Value::Bool(false)) => {
                            out.error(ctx, "No additional items allowed on array".into())
                        }
                        Some(s @ Value::Map(_)) => {
                            for (i, x) in items.iter().enumerate().skip(list.items.len()) {
                                let r = self.sub(&s, x, &ctx.child(&i.to_string()), depth);
                                out.merge(r);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(s @ (Value::Map(_) | Value::Bool(_))) => {
                for (i, x) in items.iter().enumerate() {
                    let r = self.sub(&s, x, &ctx.child(&i.to_string()), depth);
                    out.merge(r);
                }
            }
            _ => {}
        }
        if let Some(min) = num(&get(schema, "minItems"))
            && (items.len() as f64) < min
        {
            out.error(ctx, format!("Array must have at least {} items", min as i64));
        }
        if let Some(max) = num(&get(schema, "maxItems"))
            && (items.len() as f64) > max
        {
            out.error(ctx, format!("Array must have at most {} items", max as i64));
        }
        if matches!(get(schema, "uniqueItems"), Some(Value::Bool(true))) {
            let mut seen: Vec<String> = Vec::new();
            for x in items {
                let c = x.canonical();
                if seen.contains(&c) {
                    out.error(ctx, "array items must be unique".into());
                }
                seen.push(c);
            }
        }
        if let Some(contains) = get(schema, "contains") {
            let outcomes = (items.iter().enumerate())
                .map(|(i, x)| self.sub(&contains, x, &ctx.child(&i.to_string()), depth));
            any_valid(outcomes, out, ctx, "At least one of the items must match");
        }
        out.score += 1;
    }

    fn object(&self, schema: &Value, pairs: &[(String, Data)], out: &mut Outcome, ctx: &Ctx, depth: usize) {
        if let Some(min) = num(&get(schema, "minProperties"))
            && (pairs.len() as f64) < min
        {
            out.error(ctx, format!("Must have at least {} properties", min as i64));
        }
        if let Some(max) = num(&get(schema, "maxProperties"))
            && (pairs.len() as f64) > max
        {
            out.error(ctx, format!("Must have at most {} properties", max as i64));
        }
        if let Some(Value::List(req)) = get(schema, "required") {
            for r in &req.items {
                let Some(name) = r.as_str() else { continue };
                if pairs.iter().any(|(k, _)| k == name) {
                    out.score += 1;
                } else {
                    out.error(ctx, format!("{name} is required"));
                }
            }
        }
        let props = get(schema, "properties");
        let patterns = get(schema, "patternProperties");
        for (k, x) in pairs {
            let found = props
                .as_ref()
                .and_then(Value::as_map)
                .is_some_and(|m| m.get(k).is_some());
            let mut matched = false;
            if let Some(Value::Map(pp)) = &patterns {
                for (p, s) in pp.snapshot() {
                    if regex::Regex::new(&p).is_ok_and(|re| re.is_match(k)) {
                        matched = true;
                        self.recurse(&s, x, out, &ctx.child(k), depth + 1);
                    }
                }
            }
            if !found && !matched {
                match get(schema, "additionalProperties") {
                    Some(Value::Bool(false)) => {
                        out.error(ctx, format!("Additional property {k} is not allowed"))
                    }
                    Some(s @ Value::Map(_)) => {
                        let r = self.sub(&s, x, &ctx.child(k), depth);
                        out.merge(r);
                    }
                    _ => {}
                }
            }
        }
        if let Some(names) = get(schema, "propertyNames") {
            for (k, _) in pairs {
                let r = self.sub(&names, &Data::Str(k.clone()), ctx, depth);
                if !r.valid() {
                    out.error(ctx, format!("Property name of \"{k}\" does not match"));
                    out.merge(r);
                }
            }
        }
        out.score += 1;
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len() + 1
            && let Some(h) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// gojsonschema's format checkers, for the formats charts use.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "email" | "idn-email" => {
            let mut parts = s.rsplitn(2, '@');
            let domain = parts.next().unwrap_or("");
            let local = parts.next().unwrap_or("");
            !local.is_empty() && !domain.is_empty()
        }
        "hostname" | "idn-hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.trim_end_matches('.').split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
        "uuid" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.len() == 5
                && [8, 4, 4, 4, 12]
                    .iter()
                    .zip(&parts)
                    .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "date-time" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10,
        "regex" => regex::Regex::new(s).is_ok(),
        "uri" => s.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }),
        _ => true,
    }
}

/// gojsonschema's "at least one": the outcomes are made in turn until one
/// is valid; when none is, `message` and the errors of the best-scoring
/// outcome go into `out`.
fn any_valid(outcomes: impl Iterator<Item = Outcome>, out: &mut Outcome, ctx: &Ctx, message: &str) {
    let mut best: Option<Outcome> = None;
    for r in outcomes {
        if r.valid() {
            return;
        }
        if best.as_ref().is_none_or(|b| r.score > b.score) {
            best = Some(r);
        }
    }
    out.error(ctx, message.into());
    if let Some(b) = best {
        out.merge(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::yaml::parse_map;

    fn check(schema: &str, values: &str) -> Result<(), String> {
        validate(schema.as_bytes(), &parse_map(values).unwrap())
    }

    #[test]
    fn errors_read_like_gojsonschema() {
        let schema = r##"{
            "type": "object",
            "properties": {
                "replicaCount": {"type": "number"},
                "deployment": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 0}}},
                "mode": {"enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "strict": {"$ref": "#/$defs/strict"}
            },
            "$defs": {"strict": {"type": "object", "additionalProperties": false, "required": ["x"]}}
        }"##;
        assert_eq!(
            check(schema, "replicaCount: 1\ndeployment: {replicas: 2}"),
            Ok(())
        );
        for (values, want) in [
            (
                "replicaCount: one",
                "- replicaCount: Invalid type. Expected: number, given: string\n",
            ),
            (
                "deployment: {replicas: -1}",
                "- deployment.replicas: Must be greater than or equal to 0\n",
            ),
            (
                "deployment: {replicas: 1.5}",
                "- deployment.replicas: Invalid type. Expected: integer, given: number\n",
            ),
            (
                "mode: c",
                "- mode: mode must be one of the following: \"a\", \"b\"\n",
            ),
            ("name: A", "- name: Does not match pattern '^[a-z]+$'\n"),
            (
                "strict: {z: 1}",
                "- strict: x is required\n- strict: Additional property z is not allowed\n",
            ),
        ] {
            assert_eq!(check(schema, values).unwrap_err(), want, "{values}");
        }
    }

    #[test]
    fn remote_refs_are_refused() {
        let e = check(
            r#"{"properties": {"a": {"$ref": "https://example.com/s.json"}}}"#,
            "a: 1",
        )
        .unwrap_err();
        assert!(e.contains("https://example.com/s.json"), "{e}");
    }
}
