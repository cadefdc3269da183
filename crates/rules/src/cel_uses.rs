//! Which parts of `record` and `event` a rule's CEL reads, so that a matched event converts
//! only those into CEL values instead of the whole record (most of a matched event's cost
//! for rules that only count, such as a threshold on `userIdentity`).

use std::collections::BTreeSet;

use cel_parser::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr, operators};
use cel_parser::reference::Val;

/// The top-level members of a variable an expression reads, or `None` when it uses the
/// variable as a whole (passes it to a function, iterates it, compares it, ...).
pub(crate) type Members = Option<BTreeSet<String>>;

/// The members of `var` that `source` reads. Member reads are `var.x` (also inside
/// `has()`), `var['x']` and trailwatch's `get(var, 'x.…')` / `var.get('x.…')` with a
/// literal path; any other mention of `var` counts as a use of the whole. A source that
/// does not parse counts as a whole use (it never gets this far: rules compile first).
pub(crate) fn members_read(source: &str, var: &str) -> Members {
    let expr = cel_parser::Parser::new().parse(source).ok()?;
    let mut found = BTreeSet::new();
    walk(&expr, var, &mut found).then_some(found)
}

/// The union of two uses (a whole use wins).
pub(crate) fn union(a: Members, b: Members) -> Members {
    let (mut a, b) = (a?, b?);
    a.extend(b);
    Some(a)
}

fn is_ident(e: &IdedExpr, var: &str) -> bool {
    matches!(&e.expr, Expr::Ident(name) if name == var)
}

fn string_literal(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(Val::String(s)) => Some(s),
        _ => None,
    }
}

/// Adds the members of `var` read under `e`; false on a whole use.
fn walk(e: &IdedExpr, var: &str, found: &mut BTreeSet<String>) -> bool {
    match &e.expr {
        Expr::Ident(name) => name != var,
        Expr::Select(s) => {
            if is_ident(&s.operand, var) {
                found.insert(s.field.clone());
                return true;
            }
            walk(&s.operand, var, found)
        }
        Expr::Call(call) => {
            if let Some(rest) = member_call(call, var, found) {
                return rest.iter().all(|a| walk(a, var, found));
            }
            call.target.iter().all(|t| walk(t, var, found))
                && call.args.iter().all(|a| walk(a, var, found))
        }
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .all(|part| walk(part, var, found)),
        Expr::List(l) => l.elements.iter().all(|x| walk(x, var, found)),
        Expr::Map(m) => walk_entries(&m.entries, var, found),
        Expr::Struct(s) => walk_entries(&s.entries, var, found),
        Expr::Literal(_) | Expr::Unspecified => true,
    }
}

fn walk_entries(entries: &[IdedEntryExpr], var: &str, found: &mut BTreeSet<String>) -> bool {
    entries.iter().all(|entry| match &entry.expr {
        EntryExpr::MapEntry(me) => walk(&me.key, var, found) && walk(&me.value, var, found),
        EntryExpr::StructField(sf) => walk(&sf.value, var, found),
    })
}

/// For `var['x']`, `get(var, 'x.…', …)` and `var.get('x.…', …)`: records member `x` and
/// returns the call's other arguments (still to walk); `None` for any other call.
fn member_call<'e>(
    call: &'e cel_parser::ast::CallExpr,
    var: &str,
    found: &mut BTreeSet<String>,
) -> Option<&'e [IdedExpr]> {
    let (subject, args) = match (&call.target, call.args.as_slice()) {
        (Some(target), args) => (&**target, args),
        (None, [first, args @ ..]) => (first, args),
        (None, []) => return None,
    };
    if !is_ident(subject, var) {
        return None;
    }
    let (key, rest) = args.split_first()?;
    let key = string_literal(key)?;
    let member = match call.func_name.as_str() {
        operators::INDEX if call.target.is_none() && rest.is_empty() => key,
        // `get` walks a dotted path and skips empty segments; an empty path is the whole.
        "get" => key.split('.').find(|seg| !seg.is_empty())?,
        _ => return None,
    };
    found.insert(member.to_owned());
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str) -> Option<Vec<String>> {
        members_read(source, "record").map(|m| m.into_iter().collect())
    }

    #[test]
    fn member_reads_are_collected() {
        assert_eq!(
            read("record.userIdentity.type == 'Root' && has(record.errorCode)"),
            Some(vec!["errorCode".into(), "userIdentity".into()])
        );
        assert_eq!(
            read(
                "string(get(record, 'userIdentity.sessionContext.sessionIssuer.arn', get(record, 'userIdentity.arn', 'unknown')))"
            ),
            Some(vec!["userIdentity".into()])
        );
        assert_eq!(
            read("record['eventName'] in ['A'] && record.get('.requestParameters.x', 1) > 0"),
            Some(vec!["eventName".into(), "requestParameters".into()])
        );
        assert_eq!(
            read("[1, 2].exists(x, x == size(record.resources))"),
            Some(vec!["resources".into()])
        );
        assert_eq!(read("config.x == 1"), Some(vec![]));
    }

    #[test]
    fn whole_uses_are_told_apart() {
        for source in [
            "size(record) > 3",
            "record == {}",
            "record.exists(k, k == 'a')",
            "get(record, '', 1) == 1",
            "get(record, path_var) == 1",
            "record[name] == 1",
            "[record][0].x == 1",
            "{'a': record}.a.x == 1",
            "json(record) != ''",
        ] {
            assert_eq!(read(source), None, "{source}");
        }
    }

    #[test]
    fn unions_keep_whole_uses() {
        let a = members_read("record.a == 1", "record");
        let b = members_read("record.b == 1", "record");
        assert_eq!(
            union(a.clone(), b).map(|m| m.into_iter().collect::<Vec<_>>()),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(union(a, members_read("size(record) > 0", "record")), None);
    }
}
