//! What every CEL expression the API takes must satisfy, for the registry (which refuses the
//! rest with upstream's `compilation failed:` message) and admission (which evaluates them):
//! one definition, so whatever is stored can be evaluated.
//!
//! cel-go bounds an expression by its size (100,000 code points) and its recursion depth
//! (250), where every link of an operator chain (`a + b + c ...`) is a level as much as a
//! nesting is. The `cel` crate's parser bounds nesting only (96 levels), so the depth of
//! the parsed expression is checked here; without it a long chain, which parses, would
//! overflow the evaluator's stack and abort the server.
//!
//! Parsing and evaluation recurse, so both run on a thread with a deep stack
//! ([`on_deep_stack`]), never on a request's.

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr};
use kube_cel::cel::parser::Parser;

/// cel-go's cap on an expression's size, which Kubernetes keeps.
pub const MAX_CODE_POINTS: usize = 100_000;
/// The parser's nesting limit (cel-go's is 250; the `cel` crate's default is 96, and
/// admission compiles with that default).
pub const MAX_NESTING: u16 = 96;
/// cel-go's recursion limit, applied to the parsed expression's depth.
pub const MAX_DEPTH: usize = 250;

/// The stack CEL parsing and evaluation run on. An unoptimized build needs tens of KiB per
/// level, far beyond a request thread's 2 MiB at [`MAX_DEPTH`]; the reservation is virtual,
/// only what is touched is used.
const DEEP_STACK_BYTES: usize = 256 << 20;

/// Runs `work` on a thread with a deep stack, waiting for it; `Err` when the thread cannot
/// start or `work` panics (the parser panics on some malformed input), so no expression can
/// take the server down.
pub fn on_deep_stack<T: Send>(work: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, work)
            .map_err(|e| format!("cannot start CEL: {e}"))?
            .join()
            .map_err(|_| "ERROR: <input>:-1:0: the expression could not be parsed".to_owned())
    })
}

/// The expressions directly under `expr`.
pub fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Select(select) => vec![&select.operand],
        Expr::Call(call) => call
            .target
            .iter()
            .map(|b| b.as_ref())
            .chain(&call.args)
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map.entries.iter().flat_map(entry_children).collect(),
        Expr::Struct(s) => s.entries.iter().flat_map(entry_children).collect(),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

fn entry_children(entry: &IdedEntryExpr) -> Vec<&IdedExpr> {
    match &entry.expr {
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        EntryExpr::StructField(f) => vec![&f.value],
    }
}

/// The depth of `expr` (a lone literal is 1), found without recursing.
pub fn depth(expr: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(expr, 1)];
    while let Some((e, level)) = pending.pop() {
        deepest = deepest.max(level);
        pending.extend(children(e).into_iter().map(|c| (c, level + 1)));
    }
    deepest
}

/// The recursion-limit error of an expression deeper than [`MAX_DEPTH`], as cel-go says it.
pub fn depth_error(expr: &IdedExpr) -> Option<String> {
    (depth(expr) > MAX_DEPTH)
        .then(|| format!("ERROR: <input>:-1:0: expression recursion limit exceeded: {MAX_DEPTH}"))
}

/// Why `expression` cannot be compiled, rendered as cel-go renders its issues (without the
/// `compilation failed: ` prefix); `None` when it parses within the limits. Kubernetes'
/// environment has optional syntax (`a.?b`) on.
pub fn compile_error(expression: &str) -> Option<String> {
    let size = expression.chars().count();
    if size > MAX_CODE_POINTS {
        return Some(format!(
            "ERROR: <input>:-1:0: expression code point size exceeds limit: size: {size}, limit {MAX_CODE_POINTS}"
        ));
    }
    let parse = || match Parser::new()
        .enable_optional_syntax(true)
        .max_recursion_depth(MAX_NESTING)
        .parse(expression)
    {
        Ok(ast) => depth_error(&ast),
        // The nesting limit surfaces as a wrapped error followed by follow-on noise; cel-go
        // reports just the limit.
        Err(errs)
            if errs
                .errors
                .iter()
                .any(|e| e.msg.contains("Recursion limit")) =>
        {
            Some(format!(
                "ERROR: <input>:-1:0: expression recursion limit exceeded: {MAX_NESTING}"
            ))
        }
        Err(errs) => Some(errs.to_string().replace("\n| ", "\n | ")),
    };
    on_deep_stack(parse).unwrap_or_else(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_count_as_depth_and_are_refused_past_the_limit() {
        let chain = |n: usize| vec!["1"; n].join(" + ");
        assert_eq!(compile_error(&chain(MAX_DEPTH - 1)), None);
        assert_eq!(
            compile_error(&chain(MAX_DEPTH + 1)).as_deref(),
            Some("ERROR: <input>:-1:0: expression recursion limit exceeded: 250")
        );
        // The longest chain the size cap lets through parses on the deep stack.
        assert!(compile_error(&chain(MAX_CODE_POINTS / 4)).is_some());
    }

    #[test]
    fn depth_counts_every_level() {
        let depth_of = |source: &str| depth(&Parser::new().parse(source).unwrap());
        assert_eq!(depth_of("1"), 1);
        assert_eq!(depth_of("a.b.c"), 3);
        assert_eq!(depth_of("f(1, g(2))"), 3);
        assert_eq!(depth_of("((((1))))"), 1);
    }
}
