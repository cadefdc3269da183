//! CEL conditions: compiling expressions once, converting JSON to CEL values, and the
//! functions trailwatch adds to the language (business hours, CIDR sets, key checks,
//! string and list helpers, policy analysis).

use std::collections::HashMap;
use std::sync::Arc;

use cel_interpreter::extractors::Arguments;
use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, FunctionContext, Program, Value};
use chrono::{DateTime, Utc};
use trailwatch_config::{Cidr, Config, Glob, Pos, net};

/// A compiled CEL expression with its source and position (for error messages).
pub struct CelExpr {
    /// The expression as written.
    pub source: String,
    /// Where it is in the rule file.
    pub pos: Pos,
    program: Program,
}

impl std::fmt::Debug for CelExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelExpr")
            .field("source", &self.source)
            .finish()
    }
}

impl CelExpr {
    /// Compiles an expression; the error is a one-line reason.
    pub fn compile(source: &str, pos: Pos) -> Result<CelExpr, String> {
        // The CEL parser (antlr4rust) can panic on some malformed input instead of
        // returning an error; contain that so a bad rule never takes the process down.
        let compiled = compile_quietly(source).ok_or_else(|| {
            format!("CEL syntax error in {source:?}: the expression is incomplete or malformed")
        })?;
        let program = compiled.map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("syntax error").to_owned();
            format!(
                "CEL syntax error in {:?}: {}",
                source,
                first
                    .trim_start_matches("ERROR: ")
                    .trim_start_matches("<input>:")
            )
        })?;
        Ok(CelExpr {
            source: source.to_owned(),
            pos,
            program,
        })
    }

    /// The top-level members of `var` the expression reads (`None`: it uses it whole).
    pub(crate) fn members_read(&self, var: &str) -> crate::cel_uses::Members {
        crate::cel_uses::members_read(&self.source, var)
    }

    /// Whether the expression mentions the variable `var` at all.
    pub(crate) fn mentions(&self, var: &str) -> bool {
        self.program.references().has_variable(var)
    }

    /// Evaluates to a value.
    pub fn eval(&self, ctx: &Context<'_>) -> Result<Value, String> {
        self.program.execute(ctx).map_err(|e| e.to_string())
    }

    /// Evaluates to a boolean; anything else (or an error) is an error.
    pub fn eval_bool(&self, ctx: &Context<'_>) -> Result<bool, String> {
        match self.eval(ctx)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression {:?} gave {} instead of a bool",
                self.source,
                type_name(&other)
            )),
        }
    }

    /// Names of the free variables the expression refers to (names bound by macros such as
    /// `exists(x, …)` are left out).
    pub fn variables(&self) -> Vec<String> {
        let refs = self.program.references();
        let bound = macro_bound_names(&self.source);
        let mut v: Vec<String> = refs
            .variables()
            .into_iter()
            .filter(|n| !bound.iter().any(|b| b == n))
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    /// Free variables not in `known`, for load-time errors.
    pub fn unknown_variables(&self, known: &[&str]) -> Vec<String> {
        self.variables()
            .into_iter()
            .filter(|v| !known.contains(&v.as_str()))
            .collect()
    }
}

/// Runs the CEL parser, turning a parser panic into `None` without printing the panic
/// message (the hook is swapped under a lock for the duration; compiles are rare).
fn compile_quietly(source: &str) -> Option<Result<Program, cel_interpreter::ParseErrors>> {
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = HOOK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| Program::compile(source));
    std::panic::set_hook(previous);
    result.ok()
}

/// Identifiers bound by CEL macros: the first argument of `.all(`, `.exists(`,
/// `.exists_one(`, `.map(` and `.filter(`. (A textual scan; string literals that happen to
/// contain such text only make the check more lenient.)
fn macro_bound_names(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in ["all", "exists", "exists_one", "map", "filter"] {
        let pat = format!(".{m}(");
        let mut rest = source;
        while let Some(i) = rest.find(&pat) {
            rest = &rest[i + pat.len()..];
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = rest.trim_start()[name.len()..].trim_start();
            if !name.is_empty() && after.starts_with(',') {
                out.push(name);
            }
        }
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Function(..) => "a function",
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "a bool",
        Value::Duration(_) => "a duration",
        Value::Timestamp(_) => "a timestamp",
        Value::Null => "null",
    }
}

/// Converts JSON into a CEL value.
pub fn to_cel(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => Value::List(Arc::new(a.iter().map(to_cel).collect())),
        serde_json::Value::Object(o) => {
            let map: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// Converts a CEL value back to JSON (timestamps as RFC 3339, durations as seconds).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null | Value::Function(..) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::UInt(u) => serde_json::Value::from(*u),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => {
            let mut o = serde_json::Map::new();
            for (k, v) in m.map.iter() {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                o.insert(key, to_json(v));
            }
            serde_json::Value::Object(o)
        }
        Value::Duration(d) => serde_json::Value::from(d.num_seconds()),
        Value::Timestamp(t) => serde_json::Value::String(t.to_rfc3339()),
    }
}

/// The text form of a CEL value, for keys and fields (strings without quotes).
pub fn to_key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Null => String::new(),
        other => to_json(other).to_string(),
    }
}

fn str_arg(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.to_string()],
        Value::List(l) => l.iter().filter_map(str_arg).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn get_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        // A lookup needs an owned key (two allocations and a SipHash); small maps, such as
        // most of a record's objects, are quicker to scan. Keys are unique: same answer.
        Value::Map(m) if m.map.len() <= 16 => m
            .map
            .iter()
            .find(|(k, _)| matches!(k, Key::String(s) if s.as_str() == key))
            .map(|(_, v)| v),
        Value::Map(m) => m.map.get(&Key::String(Arc::new(key.to_owned()))),
        _ => None,
    }
}

/// Arguments with the method target (if any) first, so `a.f(b)` and `f(a, b)` agree.
fn all_args(ftx: &FunctionContext, args: &Arguments) -> Vec<Value> {
    let mut out = Vec::with_capacity(args.0.len() + 1);
    if let Some(this) = &ftx.this {
        out.push(this.clone());
    }
    out.extend(args.0.iter().cloned());
    out
}

fn want(ftx: &FunctionContext, args: &[Value], n: usize) -> Result<(), ExecutionError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(ftx.error(format!(
            "{} takes {n} argument(s), got {}",
            ftx.name,
            args.len()
        )))
    }
}

fn to_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Timestamp(t) => Some(t.with_timezone(&Utc)),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

/// Whether any string inside `v` (at any depth) satisfies `pred`.
fn deep_any(v: &Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => pred(s),
        Value::List(l) => l.iter().any(|x| deep_any(x, pred)),
        Value::Map(m) => m.map.values().any(|x| deep_any(x, pred)),
        _ => false,
    }
}

/// Collects the values of `key`/`Key` members of every map inside `v`.
fn collect_tag_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::List(l) => l.iter().for_each(|x| collect_tag_keys(x, out)),
        Value::Map(m) => {
            for name in ["key", "Key"] {
                if let Some(Value::String(s)) = get_key(v, name) {
                    out.push(s.to_string());
                }
            }
            for (k, x) in m.map.iter() {
                if !matches!(k, Key::String(s) if s.as_str() == "key" || s.as_str() == "Key") {
                    collect_tag_keys(x, out);
                }
            }
        }
        _ => {}
    }
}

/// Whether a bucket policy (JSON text or parsed) has an Allow statement for everyone (`*`)
/// without a condition that restricts who or where (source VPC endpoint, source IP,
/// organisation, source account or ARN).
pub fn policy_is_public(policy: &serde_json::Value) -> bool {
    let parsed;
    let policy = match policy {
        serde_json::Value::String(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(_) => return false,
        },
        other => other,
    };
    let statements: Vec<&serde_json::Value> = match policy.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(one @ serde_json::Value::Object(_)) => vec![one],
        _ => return false,
    };
    statements.into_iter().any(|st| {
        let allow = st.get("Effect").and_then(|e| e.as_str()) == Some("Allow");
        let principal = st.get("Principal");
        let everyone = match principal {
            Some(serde_json::Value::String(s)) => s == "*",
            Some(serde_json::Value::Object(o)) => o.get("AWS").is_some_and(|a| match a {
                serde_json::Value::String(s) => s == "*",
                serde_json::Value::Array(l) => l.iter().any(|x| x.as_str() == Some("*")),
                _ => false,
            }),
            _ => false,
        };
        allow && everyone && !has_restricting_condition(st.get("Condition"))
    })
}

fn has_restricting_condition(cond: Option<&serde_json::Value>) -> bool {
    const RESTRICTING: &[&str] = &[
        "aws:sourcevpce",
        "aws:sourcevpc",
        "aws:sourceip",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceorgid",
        "aws:userid",
        "aws:username",
    ];
    let Some(serde_json::Value::Object(ops)) = cond else {
        return false;
    };
    ops.values().any(|keys| match keys {
        serde_json::Value::Object(k) => k
            .keys()
            .any(|name| RESTRICTING.contains(&name.to_ascii_lowercase().as_str())),
        _ => false,
    })
}

/// Reads a dotted path (`a.b.0.c`) from a value.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = match cur {
            Value::Map(_) => get_key(cur, seg)?,
            Value::List(l) => l.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Registers time-zone aware versions of the timestamp accessors. cel-interpreter 0.10
/// accepts `getHours('Europe/Berlin')` but ignores the zone and answers in UTC; these take
/// the optional IANA zone name seriously (an unknown zone is an error).
fn add_time_functions(ctx: &mut Context<'static>) {
    use chrono::{Datelike, Timelike};
    type Part = fn(&chrono::DateTime<chrono_tz::Tz>) -> i64;
    let parts: [(&str, Part); 8] = [
        ("getHours", |t| i64::from(t.hour())),
        ("getMinutes", |t| i64::from(t.minute())),
        ("getSeconds", |t| i64::from(t.second())),
        ("getDayOfWeek", |t| {
            i64::from(t.weekday().num_days_from_sunday())
        }),
        ("getDayOfMonth", |t| i64::from(t.day0())),
        ("getDate", |t| i64::from(t.day())),
        ("getMonth", |t| i64::from(t.month0())),
        ("getFullYear", |t| i64::from(t.year())),
    ];
    for (name, part) in parts {
        ctx.add_function(
            name,
            move |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
                let a = all_args(ftx, &args);
                let t = a
                    .first()
                    .and_then(to_time)
                    .ok_or_else(|| ftx.error("expects a timestamp"))?;
                let tz = match a.get(1) {
                    None => chrono_tz::Tz::UTC,
                    Some(Value::String(z)) => z
                        .parse::<chrono_tz::Tz>()
                        .map_err(|_| ftx.error(format!("unknown time zone {z:?}")))?,
                    Some(_) => return Err(ftx.error("the time zone must be a string")),
                };
                Ok(Value::Int(part(&t.with_timezone(&tz))))
            },
        );
    }
}

/// The names of the functions trailwatch adds (for docs and lint).
pub const FUNCTIONS: &[&str] = &[
    "in_business_hours",
    "cidr_contains",
    "trusted_ip",
    "trusted_principal",
    "trusted_user_agent",
    "has_all",
    "missing",
    "tag_keys",
    "lower",
    "upper",
    "trim",
    "split",
    "join",
    "json",
    "glob",
    "get",
    "deep_contains",
    "policy_is_public",
    "cidr_prefix",
    "as_list",
];

/// Builds the root context: standard CEL plus trailwatch's functions, with the config
/// bound as `config`. Built once per rule set and shared by every evaluation.
pub fn root_context(config: &Config) -> Context<'static> {
    let mut ctx = Context::default();
    ctx.add_variable_from_value("config", to_cel(&config_json(config)));
    add_time_functions(&mut ctx);

    let hours = config.business_hours.clone();
    ctx.add_function(
        "in_business_hours",
        move |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            let t = to_time(&a[0]).ok_or_else(|| ftx.error("expects an RFC 3339 time"))?;
            Ok(Value::Bool(hours.contains(t)))
        },
    );
    ctx.add_function(
        "cidr_contains",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let mut set = Vec::new();
            for c in strings(&a[0]) {
                set.push(c.parse::<Cidr>().map_err(|e| ftx.error(e.to_string()))?);
            }
            let ip = str_arg(&a[1]).unwrap_or("");
            Ok(Value::Bool(net::any_contains(&set, ip)))
        },
    );
    let cidrs = config.trusted.cidrs.clone();
    ctx.add_function(
        "trusted_ip",
        move |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            Ok(Value::Bool(net::any_contains(
                &cidrs,
                str_arg(&a[0]).unwrap_or(""),
            )))
        },
    );
    let principals = config.trusted.principals.clone();
    ctx.add_function(
        "trusted_principal",
        move |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            let s = str_arg(&a[0]).unwrap_or("");
            Ok(Value::Bool(principals.iter().any(|g| g.matches(s))))
        },
    );
    let agents = config.trusted.user_agents.clone();
    ctx.add_function(
        "trusted_user_agent",
        move |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            let s = str_arg(&a[0]).unwrap_or("");
            Ok(Value::Bool(agents.iter().any(|g| g.matches(s))))
        },
    );
    ctx.add_function(
        "cidr_prefix",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            let c = str_arg(&a[0])
                .unwrap_or("")
                .parse::<Cidr>()
                .map_err(|e| ftx.error(e.to_string()))?;
            Ok(Value::Int(i64::from(c.prefix())))
        },
    );
    ctx.add_function(
        "as_list",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            Ok(match &a[0] {
                Value::List(_) => a[0].clone(),
                Value::Null => Value::List(Arc::new(Vec::new())),
                other => Value::List(Arc::new(vec![other.clone()])),
            })
        },
    );
    ctx.add_function(
        "has_all",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let keys = strings(&a[1]);
            let ok = match &a[0] {
                Value::Map(_) => keys.iter().all(|k| get_key(&a[0], k).is_some()),
                other => {
                    let present = strings(other);
                    keys.iter().all(|k| present.contains(k))
                }
            };
            Ok(Value::Bool(ok))
        },
    );
    ctx.add_function(
        "missing",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let required = strings(&a[0]);
            let present: Vec<String> = match &a[1] {
                Value::Map(m) => m
                    .map
                    .keys()
                    .filter_map(|k| match k {
                        Key::String(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .collect(),
                other => strings(other),
            };
            let out: Vec<Value> = required
                .into_iter()
                .filter(|k| !present.contains(k))
                .map(|k| Value::String(Arc::new(k)))
                .collect();
            Ok(Value::List(Arc::new(out)))
        },
    );
    ctx.add_function(
        "tag_keys",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            let mut out = Vec::new();
            collect_tag_keys(&a[0], &mut out);
            Ok(Value::List(Arc::new(
                out.into_iter()
                    .map(|s| Value::String(Arc::new(s)))
                    .collect(),
            )))
        },
    );
    for (name, f) in [
        ("lower", str::to_lowercase as fn(&str) -> String),
        ("upper", str::to_uppercase as fn(&str) -> String),
        ("trim", |s: &str| s.trim().to_owned()),
    ] {
        ctx.add_function(
            name,
            move |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
                let a = all_args(ftx, &args);
                want(ftx, &a, 1)?;
                Ok(match &a[0] {
                    Value::String(s) => Value::String(Arc::new(f(s))),
                    Value::Null => Value::String(Arc::new(String::new())),
                    _ => return Err(ftx.error("expects a string")),
                })
            },
        );
    }
    ctx.add_function(
        "split",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let s = str_arg(&a[0]).unwrap_or("");
            let sep = str_arg(&a[1]).unwrap_or(",");
            Ok(Value::List(Arc::new(
                s.split(sep)
                    .map(|p| Value::String(Arc::new(p.to_owned())))
                    .collect(),
            )))
        },
    );
    ctx.add_function(
        "join",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let parts: Vec<String> = match &a[0] {
                Value::List(l) => l.iter().map(to_key_string).collect(),
                other => vec![to_key_string(other)],
            };
            Ok(Value::String(Arc::new(
                parts.join(str_arg(&a[1]).unwrap_or(",")),
            )))
        },
    );
    ctx.add_function(
        "json",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            Ok(match &a[0] {
                Value::String(s) => serde_json::from_str::<serde_json::Value>(s)
                    .map(|v| to_cel(&v))
                    .unwrap_or(Value::Null),
                other => other.clone(),
            })
        },
    );
    ctx.add_function(
        "glob",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let s = str_arg(&a[1]).unwrap_or("");
            Ok(Value::Bool(
                strings(&a[0]).iter().any(|p| Glob::new(p).matches(s)),
            ))
        },
    );
    ctx.add_function(
        "get",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            if a.len() != 2 && a.len() != 3 {
                return Err(ftx.error("get takes (value, path) or (value, path, default)"));
            }
            let path = str_arg(&a[1]).unwrap_or("");
            let default = a.get(2).cloned().unwrap_or(Value::Null);
            Ok(match get_path(&a[0], path) {
                Some(Value::Null) | None => default,
                Some(v) => v.clone(),
            })
        },
    );
    ctx.add_function(
        "deep_contains",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 2)?;
            let needles = strings(&a[1]);
            Ok(Value::Bool(deep_any(&a[0], &|s| {
                needles.iter().any(|n| s.contains(n.as_str()))
            })))
        },
    );
    ctx.add_function(
        "policy_is_public",
        |ftx: &FunctionContext, args: Arguments| -> Result<Value, ExecutionError> {
            let a = all_args(ftx, &args);
            want(ftx, &a, 1)?;
            Ok(Value::Bool(policy_is_public(&to_json(&a[0]))))
        },
    );
    ctx
}

/// The config as rules see it (`config.*` in CEL and templates).
pub fn config_json(config: &Config) -> serde_json::Value {
    let bh = &config.business_hours;
    serde_json::json!({
        "accounts": config.accounts,
        "business_hours": {
            "start": bh.start.format("%H:%M").to_string(),
            "end": bh.end.format("%H:%M").to_string(),
            "days": bh.days.iter().map(|d| d.to_string().to_lowercase()).collect::<Vec<_>>(),
            "timezone": bh.timezone.name(),
        },
        "timezone": bh.timezone.name(),
        "required_tags": config.required_tags,
        "trusted": {
            "principals": config.trusted.principals.iter().map(Glob::as_str).collect::<Vec<_>>(),
            "cidrs": config.trusted.cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "user_agents": config.trusted.user_agents.iter().map(Glob::as_str).collect::<Vec<_>>(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `expr` with `record` bound and compares the JSON result with `want`.
    fn check(config: &Config, record: serde_json::Value, expr: &str, want: serde_json::Value) {
        let root = root_context(config);
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value("record", to_cel(&record));
        let e = CelExpr::compile(expr, Pos::default()).unwrap();
        let got = e.eval(&ctx).unwrap_or_else(|err| panic!("{expr}: {err}"));
        assert_eq!(to_json(&got), want, "{expr}");
    }

    #[test]
    fn functions() {
        let cfg = trailwatch_config::parse(
            "t",
            "business_hours: {start: '09:00', end: '17:00', timezone: Europe/Berlin}\nrequired_tags: [Owner, Team]\ntrusted: {cidrs: [10.0.0.0/8], principals: ['arn:aws:iam::*:role/tf-*']}\n",
        )
        .unwrap();
        let rec = serde_json::json!({
            "eventTime": "2024-07-31T13:06:24Z",
            "sourceIPAddress": "10.1.2.3",
            "tags": {"items": [{"key": "Owner", "value": "a"}]},
            "p": "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\"}]}",
            "arn": "arn:aws:iam::1:role/tf-ci",
        });
        let t = serde_json::json!(true);
        let f = serde_json::json!(false);
        check(
            &cfg,
            rec.clone(),
            "in_business_hours(record.eventTime)",
            t.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "in_business_hours('2024-07-31T18:00:00Z')",
            f.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "timestamp(record.eventTime).getHours('Europe/Berlin')",
            serde_json::json!(15),
        );
        check(
            &cfg,
            rec.clone(),
            "timestamp(record.eventTime).getHours()",
            serde_json::json!(13),
        );
        check(
            &cfg,
            rec.clone(),
            "timestamp('2024-07-31T23:30:00Z').getDayOfWeek('Asia/Tokyo')",
            serde_json::json!(4),
        );
        check(
            &cfg,
            rec.clone(),
            "cidr_contains(['0.0.0.0/0'], record.sourceIPAddress)",
            t.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "trusted_ip(record.sourceIPAddress)",
            t.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "trusted_principal(record.arn)",
            t.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "missing(config.required_tags, tag_keys(record.tags))",
            serde_json::json!(["Team"]),
        );
        check(
            &cfg,
            rec.clone(),
            "has_all(record, ['eventTime', 'p'])",
            t.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "has_all(record, ['eventTime', 'nope'])",
            f.clone(),
        );
        check(&cfg, rec.clone(), "policy_is_public(record.p)", t.clone());
        check(
            &cfg,
            rec.clone(),
            "policy_is_public(json(record.p))",
            t.clone(),
        );
        check(
            &cfg,
            rec.clone(),
            "get(record, 'tags.items.0.key', '')",
            serde_json::json!("Owner"),
        );
        check(
            &cfg,
            rec.clone(),
            "get(record, 'no.such', 'd')",
            serde_json::json!("d"),
        );
        check(
            &cfg,
            rec.clone(),
            "lower('AbC') + upper('x')",
            serde_json::json!("abcX"),
        );
        check(&cfg, rec.clone(), "'AbC'.lower()", serde_json::json!("abc"));
        check(
            &cfg,
            rec.clone(),
            "join(split('a,b', ','), '+')",
            serde_json::json!("a+b"),
        );
        check(
            &cfg,
            rec.clone(),
            "deep_contains(record.tags, 'Own')",
            t.clone(),
        );
        check(&cfg, rec.clone(), "glob('*tf-*', record.arn)", t);
        check(
            &cfg,
            rec,
            "[[1, 2], [3]].exists(l, l.exists(x, x == 3))",
            serde_json::json!(true),
        );
    }

    #[test]
    fn public_policy_with_condition_is_not_public() {
        let p = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]});
        assert!(!policy_is_public(&p));
        let p = serde_json::json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:*"}});
        assert!(policy_is_public(&p));
    }

    #[test]
    fn free_variables_leave_out_macro_names() {
        let e = CelExpr::compile(
            "[1].exists(x, x > 0) && record.items.map(i, i.name).filter(n, n == y) && recrod.a",
            Pos::default(),
        )
        .unwrap();
        assert_eq!(e.variables(), ["record", "recrod", "y"]);
        assert_eq!(e.unknown_variables(&["record", "y"]), ["recrod"]);
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = CelExpr::compile("record.a ==", Pos::default()).unwrap_err();
        assert!(err.contains("CEL syntax error"), "{err}");
    }
}
