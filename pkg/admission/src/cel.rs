//! CEL evaluation of admission expressions (policy validations, messages, audit annotations,
//! webhook and policy matchConditions) on the `cel` crate with Kubernetes' extension
//! libraries (`kube-cel`), over the variables upstream binds: `object`, `oldObject`,
//! `request`, `params`, `namespaceObject`, and a policy's composited `variables`.
//!
//! Composited variables are evaluated lazily, as upstream: only those an expression names
//! (and those they name) are evaluated, each at most once per [`Activation`]; a variable that
//! fails only fails the expressions that reach it.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use kube_cel::KubeCelExt as _;
use kube_cel::cel::common::ast::{Expr, IdedExpr, operators};
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{self, ExecutionError};
use serde_json::{Value, json};

use crate::attributes::Attributes;

pub use rkube_api::cel::on_deep_stack;

/// The variables of one evaluation besides the request itself.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// `params` (policies with a paramKind).
    pub params: Option<Value>,
    /// `namespaceObject` (null when absent).
    pub namespace: Option<Value>,
}

/// Compiled programs by source. Policies and match conditions run on every write they match
/// and their sources rarely change, so each is parsed and checked once; the cache is emptied
/// when it reaches [`MAX_CACHED_PROGRAMS`] (sources of deleted policies would otherwise stay).
static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<Program>>>> = LazyLock::new(Mutex::default);
const MAX_CACHED_PROGRAMS: usize = 4096;

/// One expression, compiled once.
#[derive(Debug)]
pub struct Program {
    source: String,
    program: Result<cel::Program, String>,
    /// The composited variables it names (`variables.<name>`).
    names: BTreeSet<String>,
}

impl Program {
    /// `source` compiled (from the cache when it was before); a compile error is reported
    /// when the program is evaluated.
    pub fn compile(source: &str) -> Arc<Program> {
        let cache = || PROGRAMS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(program) = cache().get(source) {
            return program.clone();
        }
        // Compiled outside the lock: a slow compile does not hold up other requests.
        let program = Arc::new(Program::compile_uncached(source));
        let mut cached = cache();
        if cached.len() >= MAX_CACHED_PROGRAMS {
            cached.clear();
        }
        cached.insert(source.to_owned(), program.clone());
        program
    }

    fn compile_uncached(source: &str) -> Program {
        // What the registry admits is what compiles here (rkube_api::cel): the parser bounds
        // nesting, the depth check bounds operator chains the evaluator would recurse through.
        let program = cel::Program::compile(source)
            .map_err(|e| e.to_string())
            .and_then(|p| match rkube_api::cel::depth_error(p.expression()) {
                Some(e) => Err(e),
                None => Ok(p),
            })
            .map_err(|e| format!("compilation error: compilation failed: {e}"));
        let mut names = BTreeSet::new();
        if let Ok(p) = &program {
            variable_names(p.expression(), &mut names);
        }
        Program {
            source: source.to_owned(),
            program,
            names,
        }
    }

    /// The CEL source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Every `variables.<name>` (or `variables["<name>"]`) under `expr`.
fn variable_names(expr: &IdedExpr, out: &mut BTreeSet<String>) {
    let is_variables = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(name) if name == "variables");
    match &expr.expr {
        Expr::Select(select) if is_variables(&select.operand) => {
            out.insert(select.field.clone());
            return;
        }
        Expr::Call(call)
            if call.func_name == operators::INDEX
                && let [target, key] = call.args.as_slice()
                && is_variables(target)
                && let Expr::Literal(cel::common::ast::LiteralValue::String(name)) = &key.expr =>
        {
            out.insert(name.inner().to_owned());
        }
        _ => {}
    }
    for child in rkube_api::cel::children(expr) {
        variable_names(child, out);
    }
}

/// JSON as CEL sees it (keys as they are: map access by index works for any key).
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => cel::Value::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

/// Upstream's CEL `request` (and the body of a webhook's `AdmissionReview` request, less its
/// uid and objects): kinds, resources, names, operation, user, dryRun, options.
pub fn request(attrs: &Attributes) -> Value {
    let kind =
        json!({"group": attrs.kind.group, "version": attrs.kind.version, "kind": attrs.kind.name});
    let resource = json!({"group": attrs.resource.group, "version": attrs.resource.version, "resource": attrs.resource.name});
    let mut request = json!({
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "operation": attrs.op().as_str(),
        "userInfo": attrs.user,
        "dryRun": attrs.dry_run,
        "options": attrs.options.clone().unwrap_or(Value::Null),
    });
    if !attrs.subresource.is_empty() {
        request["subResource"] = attrs.subresource.clone().into();
        request["requestSubResource"] = attrs.subresource.clone().into();
    }
    if !attrs.name.is_empty() {
        request["name"] = attrs.name.clone().into();
    }
    if !attrs.namespace.is_empty() {
        request["namespace"] = attrs.namespace.clone().into();
    }
    request
}

/// What a CEL value is called in errors.
fn type_name(value: &cel::Value) -> &'static str {
    match value {
        cel::Value::List(_) => "list",
        cel::Value::Map(_) => "map",
        cel::Value::Function(..) => "function",
        cel::Value::Int(_) => "int",
        cel::Value::UInt(_) => "uint",
        cel::Value::Float(_) => "double",
        cel::Value::String(_) => "string",
        cel::Value::Bytes(_) => "bytes",
        cel::Value::Bool(_) => "bool",
        cel::Value::Null => "null_type",
        _ => "dyn",
    }
}

/// The bound variables of one request, and a policy's composited variables.
pub struct Activation {
    root: cel::Context<'static>,
    composited: Vec<(String, Arc<Program>)>,
    /// Composited variables already evaluated: their value, or why they failed.
    values: RefCell<HashMap<String, Result<cel::Value, String>>>,
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activation")
            .field("composited", &self.composited)
            .finish_non_exhaustive()
    }
}

impl Activation {
    /// The variables of `attrs` with `vars`, and the composited `variables` (name and
    /// expression, in order: each may use those before it).
    pub fn new(attrs: &Attributes, vars: &Variables, composited: &[(String, String)]) -> Self {
        let mut root = cel::Context::default();
        root.register_all();
        let bind = |root: &mut cel::Context<'static>, name: &str, value: Option<&Value>| {
            root.add_variable_from_value(name, value.map_or(cel::Value::Null, to_cel));
        };
        bind(&mut root, "object", attrs.object.as_ref());
        bind(&mut root, "oldObject", attrs.old_object.as_ref());
        bind(&mut root, "request", Some(&request(attrs)));
        bind(&mut root, "namespaceObject", vars.namespace.as_ref());
        if let Some(params) = &vars.params {
            bind(&mut root, "params", Some(params));
        }
        Activation {
            root,
            composited: composited
                .iter()
                .map(|(name, source)| (name.clone(), Program::compile(source)))
                .collect(),
            values: RefCell::new(HashMap::new()),
        }
    }

    /// The value of composited variable `index`, evaluated once.
    fn variable(&self, index: usize) -> Result<cel::Value, String> {
        let (name, program) = &self.composited[index];
        if let Some(known) = self.values.borrow().get(name) {
            return known.clone();
        }
        let result = match &program.program {
            Err(e) => Err(format!(
                "composited variable {name:?} fails to compile: {e}"
            )),
            Ok(p) => self
                .run(p, &program.names, index)
                .map_err(|e| format!("composited variable {name:?} fails to evaluate: {e}")),
        };
        self.values
            .borrow_mut()
            .insert(name.clone(), result.clone());
        result
    }

    /// Runs `program` with the composited variables among the first `visible` that it names.
    fn run(
        &self,
        program: &cel::Program,
        names: &BTreeSet<String>,
        visible: usize,
    ) -> Result<cel::Value, String> {
        let mut bound = HashMap::new();
        let mut failed = HashMap::new();
        for (i, (name, _)) in self.composited[..visible].iter().enumerate() {
            if names.contains(name) {
                match self.variable(i) {
                    Ok(v) => {
                        bound.insert(Key::String(Arc::new(name.clone())), v);
                    }
                    Err(e) => {
                        failed.insert(name.clone(), e);
                    }
                }
            }
        }
        let mut scope = self.root.new_inner_scope();
        scope.add_variable_from_value(
            "variables",
            cel::Value::Map(Map {
                map: Arc::new(bound),
            }),
        );
        program.execute(&scope).map_err(|e| match &e {
            // A failed variable is missing from the map: its own error is the one to show.
            ExecutionError::NoSuchKey(key) => failed
                .get(key.as_str())
                .cloned()
                .unwrap_or_else(|| e.to_string()),
            _ => e.to_string(),
        })
    }

    /// Evaluates `program`: what it answered, or upstream's error text.
    pub fn eval(&self, program: &Program) -> Result<Answer, String> {
        let compiled = program.program.as_ref().map_err(Clone::clone)?;
        let value = self
            .run(compiled, &program.names, self.composited.len())
            .map_err(|e| format!("expression '{}' resulted in error: {e}", program.source))?;
        Ok(match value {
            cel::Value::Bool(b) => Answer::Bool(b),
            cel::Value::String(s) => Answer::String(s.as_str().to_owned()),
            cel::Value::Null => Answer::Null,
            other => Answer::Other(type_name(&other)),
        })
    }

    /// Evaluates a program that must answer a bool.
    pub fn eval_bool(&self, program: &Program) -> Result<bool, String> {
        match self.eval(program)? {
            Answer::Bool(b) => Ok(b),
            other => Err(format!(
                "expression '{}' resulted in error: expected a bool, got {}",
                program.source,
                other.type_name()
            )),
        }
    }
}

/// What an expression answered, as far as admission cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A bool (validations, match conditions).
    Bool(bool),
    /// A string (messages, audit annotation values).
    String(String),
    /// null.
    Null,
    /// Anything else, by its CEL type name.
    Other(&'static str),
}

impl Answer {
    /// The CEL type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Answer::Bool(_) => "bool",
            Answer::String(_) => "string",
            Answer::Null => "null_type",
            Answer::Other(t) => t,
        }
    }
}

/// Upstream's `matchConditions`: every condition must hold for the webhook or policy to
/// apply. `Ok(false)`: one is false; `Err`: one could not be evaluated (and none was false),
/// which the failure policy decides.
pub fn match_conditions(
    attrs: &Attributes,
    vars: &Variables,
    conditions: &Value,
) -> Result<bool, String> {
    let Some(list) = conditions.as_array().filter(|l| !l.is_empty()) else {
        return Ok(true);
    };
    on_deep_stack(|| evaluate_conditions(attrs, vars, list))?
}

/// [`match_conditions`] on the current thread.
fn evaluate_conditions(
    attrs: &Attributes,
    vars: &Variables,
    list: &[Value],
) -> Result<bool, String> {
    let activation = Activation::new(attrs, vars, &[]);
    let mut errors = Vec::new();
    for condition in list {
        let program = Program::compile(condition["expression"].as_str().unwrap_or(""));
        match activation.eval_bool(&program) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(true),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Operation;
    use crate::testing::attrs;

    fn deployment() -> Attributes {
        attrs(
            Operation::Create,
            "apps",
            "deployments",
            "Deployment",
            "ns",
            Some(
                json!({"metadata": {"name": "d", "labels": {"app.kubernetes.io/name": "web"}}, "spec": {"replicas": 6}}),
            ),
        )
    }

    #[test]
    fn expressions_see_object_request_params_and_label_keys_as_written() {
        let a = deployment();
        let vars = Variables {
            params: Some(json!({"max": 5})),
            namespace: None,
        };
        let act = Activation::new(&a, &vars, &[]);
        let eval = |src: &str| act.eval(&Program::compile(src));
        assert_eq!(
            eval("object.spec.replicas <= params.max"),
            Ok(Answer::Bool(false))
        );
        assert_eq!(
            eval(
                "request.operation == 'CREATE' && request.resource.group == 'apps' && request.name == 'd'"
            ),
            Ok(Answer::Bool(true))
        );
        assert_eq!(
            eval(
                "object.metadata.labels['app.kubernetes.io/name'] == 'web' && oldObject == null && namespaceObject == null"
            ),
            Ok(Answer::Bool(true))
        );
        assert_eq!(eval("object.spec"), Ok(Answer::Other("map")));
        assert_eq!(
            eval("object.spec.nope > 1"),
            Err("expression 'object.spec.nope > 1' resulted in error: No such key: nope".into())
        );
        assert!(
            eval("object.spec.(")
                .unwrap_err()
                .starts_with("compilation error: ")
        );
    }

    #[test]
    fn composited_variables_are_lazy_and_fail_only_where_used() {
        let a = deployment();
        let composited = [
            ("replicas".to_owned(), "object.spec.replicas".to_owned()),
            ("broken".to_owned(), "object.spec.missing".to_owned()),
            ("double".to_owned(), "variables.replicas * 2".to_owned()),
        ];
        let act = Activation::new(&a, &Variables::default(), &composited);
        let eval = |src: &str| act.eval_bool(&Program::compile(src));
        assert_eq!(eval("variables.double == 12"), Ok(true));
        assert_eq!(eval("variables['replicas'] > 5"), Ok(true));
        // Short-circuited: the broken variable is never reached.
        assert_eq!(eval("true || variables.broken > 1"), Ok(true));
        assert_eq!(
            eval("variables.broken > 1"),
            Err("expression 'variables.broken > 1' resulted in error: composited variable \"broken\" fails to evaluate: No such key: missing".into())
        );
        assert_eq!(
            act.eval(&Program::compile(
                "'replicas: ' + string(variables.replicas)"
            )),
            Ok(Answer::String("replicas: 6".into()))
        );
    }

    #[test]
    fn a_source_is_compiled_once() {
        let source = "object.spec.replicas <= 5";
        assert!(Arc::ptr_eq(
            &Program::compile(source),
            &Program::compile(source)
        ));
    }

    #[test]
    fn the_deepest_and_longest_expressions_admitted_cannot_exhaust_the_stack() {
        let a = deployment();
        let nested = format!("{}1{} == 1", "(".repeat(95), ")".repeat(95));
        let chain = format!("{} == 240", vec!["1"; 240].join(" + "));
        for expression in [nested, chain] {
            let conditions = json!([{"name": "c", "expression": expression}]);
            assert_eq!(
                match_conditions(&a, &Variables::default(), &conditions),
                Ok(true)
            );
        }
        // Deeper than the API admits (stored before the check existed): an error, not a
        // crash.
        let too_long = format!("{} == 20000", vec!["1"; 20_000].join(" + "));
        let conditions = json!([{"name": "c", "expression": too_long}]);
        let err = match_conditions(&a, &Variables::default(), &conditions).unwrap_err();
        assert!(
            err.contains("expression recursion limit exceeded: 250"),
            "{err}"
        );
    }

    #[test]
    fn match_conditions_fail_on_false_and_report_errors() {
        let a = deployment();
        let vars = Variables::default();
        let conditions = |exprs: &[&str]| {
            Value::from(
                exprs
                    .iter()
                    .map(|e| json!({"name": "c", "expression": e}))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(match_conditions(&a, &vars, &Value::Null), Ok(true));
        assert_eq!(
            match_conditions(
                &a,
                &vars,
                &conditions(&["object.spec.replicas > 1", "request.dryRun"])
            ),
            Ok(false)
        );
        assert_eq!(
            match_conditions(&a, &vars, &conditions(&["object.x", "false"])),
            Ok(false)
        );
        assert_eq!(
            match_conditions(&a, &vars, &conditions(&["object.x", "'yes'"])),
            Err("[expression 'object.x' resulted in error: No such key: x, expression ''yes'' resulted in error: expected a bool, got string]".into())
        );
    }
}
