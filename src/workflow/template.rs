//! Templates: minijinja in strict mode, so that a typo in `{{ steps.x.output }}` is an error and
//! never an empty string.
//!
//! Step outputs that are JSON objects or arrays become data (`steps.x.output.field`) that still
//! renders as the original text when used whole.
//!
//! A template is a small program written by whoever wrote the workflow, so its evaluation is
//! bounded: every render gets [`FUEL`] instructions, may produce at most [`MAX_OUTPUT_BYTES`] and
//! hold at most [`MAX_MEMORY_BYTES`] (compiling included: it folds constant expressions). Work
//! runs on template threads, never on the engine's ([`Templates::off_thread`]), so that a step's
//! `timeout:` and Ctrl-C still act while a slow template burns its fuel, and so that the memory
//! budget (`super::budget`), which stops a thread for good, never stops the engine.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use minijinja::value::{Enumerator, Object, ObjectRepr};
// `machinery` (the `unstable_machinery` feature) is used only to read the filter and test names
// out of compiled code (`Templates::uses`); it has no semver promise, so a minijinja upgrade may
// need that one function adjusted, which its tests would show.
use minijinja::{Environment, UndefinedBehavior, Value, machinery};

/// Instructions one render (or one expression) may execute: far more than any real prompt needs
/// (a loop over 10,000 items with a few fields each uses well under a million), few enough that
/// a runaway loop stops within seconds.
pub const FUEL: u64 = 10_000_000;

/// The most text one render may produce (8 MiB): far above any prompt or argument a model or a
/// process accepts.
pub const MAX_OUTPUT_BYTES: usize = 8 << 20;

/// The memory one render may hold at once (64 MiB): its output and everything it builds on the
/// way (see [`super::budget`]).
pub const MAX_MEMORY_BYTES: usize = 64 << 20;

/// The template engine for one run (or one validation). Cloning shares the environment.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

/// Renders into memory, refusing to grow past [`MAX_OUTPUT_BYTES`].
struct CappedWriter {
    out: Vec<u8>,
    over: Arc<AtomicBool>,
}

impl io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.over.store(true, Ordering::Relaxed);
            return Err(io::Error::other("template output too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn output_too_large() -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "rendered text is over {} MiB (the limit of one template)",
            MAX_OUTPUT_BYTES >> 20
        ),
    )
}

/// A render to do on a template thread; it returns what delivers its result, which the thread
/// calls once it is back among the idle ones (so that the engine's next render finds it there
/// instead of starting a thread of its own).
type Job = Box<dyn FnOnce() -> Box<dyn FnOnce()> + Send>;

/// Template threads waiting for work. Starting a thread per render doubled the run time of a
/// template-heavy loop; a thread goes back here after each job, unless its budget stopped it.
static IDLE: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

/// How many template threads this process started.
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `job` on an idle template thread, or a new one.
fn on_template_thread(job: Job) -> Result<(), minijinja::Error> {
    too_many_stopped()?;
    let idle = IDLE.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let job = match idle {
        Some(worker) => match worker.send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (tx, rx) = mpsc::channel::<Job>();
    let me = tx.clone();
    STARTED.fetch_add(1, Ordering::Relaxed);
    let _ = tx.send(job);
    std::thread::Builder::new()
        .name("template".into())
        .spawn(move || {
            let mut next = rx.recv();
            while let Ok(job) = next {
                let deliver = job();
                IDLE.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(me.clone());
                deliver();
                next = rx.recv();
            }
        })
        .map(|_| ())
        .map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot start a thread to render the template: {e}"),
            )
        })
}

/// Refuses to start a template thread once [`super::budget::MAX_STOPPED`] have spent their
/// memory budget (each still holds it).
fn too_many_stopped() -> Result<(), minijinja::Error> {
    if super::budget::may_start() {
        return Ok(());
    }
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "{} templates of this run already ran out of memory; no more are rendered",
            super::budget::MAX_STOPPED
        ),
    ))
}

fn out_of_memory() -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "the template needed more than {} MiB of memory",
            MAX_MEMORY_BYTES >> 20
        ),
    )
}

/// Says how much fuel a render may burn when it runs out.
fn explain_fuel(e: minijinja::Error) -> minijinja::Error {
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return minijinja::Error::new(
            minijinja::ErrorKind::OutOfFuel,
            format!("the template ran more than {FUEL} instructions (a runaway loop?)"),
        );
    }
    e
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a string holds template syntax at all.
pub fn is_template(s: &str) -> bool {
    // One pass over the text's braces: every step's input is asked this as the run goes.
    let bytes = s.as_bytes();
    memchr::memchr_iter(b'{', bytes).any(|i| matches!(bytes.get(i + 1), Some(b'{' | b'%' | b'#')))
}

/// Whether any string in a YAML value holds template syntax.
pub fn has_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => is_template(s),
        serde_json::Value::Array(items) => items.iter().any(has_template),
        serde_json::Value::Object(map) => map.values().any(has_template),
        _ => false,
    }
}

/// If `s` is exactly one `{{ expression }}` (surrounding white space aside), the expression.
pub fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    // `{{ a }} and {{ b }}` is not a single expression.
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    Some(
        inner
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim(),
    )
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Rendered text goes to models and processes, not to HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(FUEL));
        Templates { env: Arc::new(env) }
    }

    /// Runs `work` on a thread of its own and waits for it without blocking the runtime. When
    /// the caller stops waiting (a timeout, a signal), the thread runs on until its fuel is
    /// spent and its result is dropped; the process may exit meanwhile.
    pub fn off_thread<T, F>(&self, work: F) -> impl Future<Output = Result<T, minijinja::Error>>
    where
        T: Send + 'static,
        F: FnOnce(&Templates) -> Result<T, minijinja::Error> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = self.start_capped(work, move |result| {
            let _ = tx.send(result);
        });
        async move {
            let spent = spawned?;
            // A thread that spent its memory budget never answers: watch its flag.
            let spent = async {
                while !spent.load(Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                r = rx => r.unwrap_or_else(|_| {
                    Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        "the template thread stopped without a result",
                    ))
                }),
                () = spent => Err(out_of_memory()),
            }
        }
    }

    /// Starts `work` on a template thread under the memory budget; `deliver` gets its result.
    /// Returns the flag raised instead when the budget stops the thread.
    fn start_capped<T, F>(
        &self,
        work: F,
        deliver: impl FnOnce(Result<T, minijinja::Error>) + Send + 'static,
    ) -> Result<Arc<AtomicBool>, minijinja::Error>
    where
        T: Send + 'static,
        F: FnOnce(&Templates) -> Result<T, minijinja::Error> + Send + 'static,
    {
        let templates = self.clone();
        let spent = Arc::new(AtomicBool::new(false));
        let flag = spent.clone();
        on_template_thread(Box::new(move || {
            let result = super::budget::capped(MAX_MEMORY_BYTES, flag, || work(&templates));
            Box::new(move || deliver(result))
        }))?;
        Ok(spent)
    }

    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    /// Runs `work` on a thread under the memory budget and waits for it on this one (for
    /// validation, which has no runtime). Compiling evaluates constant expressions, so a
    /// template can spend memory before it ever renders: `{{ ['x' * 100000000] * 10 }}`.
    pub fn capped<T, F>(&self, work: F) -> Result<T, minijinja::Error>
    where
        T: Send + 'static,
        F: FnOnce(&Templates) -> Result<T, minijinja::Error> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let spent = self.start_capped(work, move |result| {
            let _ = tx.send(result);
        })?;
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if spent.load(Ordering::SeqCst) => {
                    return Err(out_of_memory());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        "the template thread stopped without a result",
                    ));
                }
            }
        }
    }

    /// Checks syntax only; the error message is minijinja's, without its location prefix.
    pub fn check_syntax(&self, source: &str) -> Result<(), minijinja::Error> {
        let source = source.to_string();
        self.capped(move |t| t.env.template_from_str(&source).map(|_| ()))
    }

    /// The dotted variable paths a template reads (`steps.research.output`, `vars.topic`),
    /// compiled under the memory budget.
    pub fn variables(&self, source: &str) -> Result<Vec<String>, minijinja::Error> {
        Ok(self.uses(source)?.variables)
    }

    /// What a template reads and the filters and tests it names that the engine does not have,
    /// compiled under the memory budget.
    pub fn uses(&self, source: &str) -> Result<Uses, minijinja::Error> {
        let source = source.to_string();
        self.capped(move |t| {
            let tmpl = t.env.template_from_str(&source)?;
            let compiled = machinery::get_compiled_template(&tmpl);
            let unknown = t.unknown_names(
                std::iter::once(&compiled.instructions).chain(compiled.blocks.values()),
            );
            Ok(Uses {
                variables: sorted(tmpl.undeclared_variables(true)),
                unknown,
            })
        })
    }

    /// [`Templates::uses`] of an `if:` expression.
    pub fn expression_uses(&self, expr: &str) -> Result<Uses, minijinja::Error> {
        let expr = expr.to_string();
        self.capped(move |t| {
            let variables = sorted(t.env.compile_expression(&expr)?.undeclared_variables(true));
            let ast = machinery::parse_expr(&expr)?;
            let mut generator = machinery::CodeGenerator::new("<expression>", &expr);
            generator.compile_expr(&ast);
            let (instructions, _) = generator.finish();
            Ok(Uses {
                variables,
                unknown: t.unknown_names(std::iter::once(&instructions)),
            })
        })
    }

    /// The filters and tests that compiled code applies and the environment lacks, each once,
    /// in order of appearance. The compiled instructions name them exactly as the engine will
    /// look them up at run time (a string that merely looks like `| upper` is no filter); the
    /// environment itself answers whether it has one, so no second list of names is kept here.
    fn unknown_names<'i, 's: 'i>(
        &self,
        code: impl Iterator<Item = &'i machinery::Instructions<'s>>,
    ) -> Vec<Unknown> {
        let mut out = Vec::new();
        for instructions in code {
            for idx in 0..instructions.len() {
                let name = match instructions.get(idx as u32) {
                    Some(machinery::Instruction::ApplyFilter(name, ..)) => {
                        Unknown::Filter(name.to_string())
                    }
                    Some(machinery::Instruction::PerformTest(name, ..)) => {
                        Unknown::Test(name.to_string())
                    }
                    _ => continue,
                };
                if !out.contains(&name) && !self.has(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Whether the environment has the filter or test: applied to `none`, it fails with
    /// anything but "unknown filter" / "unknown test" (missing arguments, say) or succeeds.
    fn has(&self, name: &Unknown) -> bool {
        let (probe, unknown) = match name {
            Unknown::Filter(n) => (n, minijinja::ErrorKind::UnknownFilter),
            Unknown::Test(n) => (n, minijinja::ErrorKind::UnknownTest),
        };
        // A name the parser accepted is an identifier; anything else cannot be one the
        // environment registered under a Jinja name.
        if probe.is_empty() || !probe.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        let expr = match name {
            Unknown::Filter(n) => format!("none | {n}"),
            Unknown::Test(n) => format!("none is {n}"),
        };
        match self.env.compile_expression(&expr) {
            Ok(compiled) => !matches!(compiled.eval(()), Err(e) if e.kind() == unknown),
            Err(_) => false,
        }
    }

    /// [`Templates::variables`] on this thread.
    fn variables_here(&self, source: &str) -> Result<Vec<String>, minijinja::Error> {
        Ok(sorted(
            self.env
                .template_from_str(source)?
                .undeclared_variables(true),
        ))
    }

    /// Renders a template to text, under fuel and the output cap. Its memory is bounded only on
    /// a template thread: the engine calls this through [`Templates::off_thread`].
    pub fn render(&self, source: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        let over = Arc::new(AtomicBool::new(false));
        let mut writer = CappedWriter {
            out: Vec::new(),
            over: over.clone(),
        };
        let rendered = self
            .env
            .template_from_str(source)
            .and_then(|t| t.render_captured_to(ctx, &mut writer).map(|_| ()));
        match rendered {
            _ if over.load(Ordering::Relaxed) => Err(output_too_large()),
            Err(e) => Err(explain_fuel(self.explain(e, source, ctx))),
            Ok(()) => String::from_utf8(writer.out).map_err(|_| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    "rendered text is not UTF-8",
                )
            }),
        }
    }

    /// Evaluates one expression under the same bounds as a render.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, minijinja::Error> {
        let value = self
            .env
            .compile_expression(expr)?
            .eval(ctx)
            .map_err(explain_fuel)?;
        if value.as_str().is_some_and(|s| s.len() > MAX_OUTPUT_BYTES) {
            return Err(output_too_large());
        }
        Ok(value)
    }

    /// Strict mode says only "undefined value"; name the path that is undefined.
    fn explain(&self, e: minijinja::Error, source: &str, ctx: &Value) -> minijinja::Error {
        if e.kind() != minijinja::ErrorKind::UndefinedError || e.detail().is_some() {
            return e;
        }
        match self.first_undefined(source, ctx) {
            Some(path) => minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                format!("`{path}` is undefined"),
            ),
            None => e,
        }
    }

    /// The shortest prefix of a variable path in `source` that is undefined in `ctx`.
    fn first_undefined(&self, source: &str, ctx: &Value) -> Option<String> {
        for path in self.variables_here(source).ok()? {
            let parts: Vec<&str> = path.split('.').collect();
            for n in 1..=parts.len() {
                let prefix = parts[..n].join(".");
                let defined = self
                    .env
                    .compile_expression(&prefix)
                    .ok()
                    .and_then(|expr| expr.eval(ctx).ok())
                    .is_some_and(|v| !v.is_undefined());
                if !defined {
                    return Some(prefix);
                }
            }
        }
        None
    }

    /// Renders a YAML value: strings that are exactly one `{{ expression }}` keep the type of
    /// the expression's result; other strings render to text; maps and lists recursively.
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &Value,
    ) -> Result<serde_json::Value, minijinja::Error> {
        Ok(match value {
            serde_json::Value::String(s) => {
                if let Some(expr) = single_expression(s) {
                    let result = self
                        .eval(expr, ctx)
                        .map_err(|e| self.explain(e, &format!("{{{{ {expr} }}}}"), ctx))?;
                    if result.is_undefined() {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::UndefinedError,
                            format!("`{expr}` is undefined"),
                        ));
                    }
                    to_json(&result)
                } else {
                    serde_json::Value::String(self.render(s, ctx)?)
                }
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.render_value(v, ctx)?);
                }
                serde_json::Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

fn sorted(names: std::collections::HashSet<String>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    names
}

/// What a template reads, and what it names that the template engine does not have (each of
/// which fails the render when it is reached).
#[derive(Debug, Default, PartialEq)]
pub struct Uses {
    /// Dotted variable paths (`steps.research.output`), sorted.
    pub variables: Vec<String>,
    pub unknown: Vec<Unknown>,
}

/// A filter (`x | name`) or a test (`x is name`) the engine does not have.
#[derive(Clone, Debug, PartialEq)]
pub enum Unknown {
    Filter(String),
    Test(String),
}

/// A minijinja value as JSON; step outputs come back as their data.
pub fn to_json(value: &Value) -> serde_json::Value {
    if let Some(output) = value.downcast_object_ref::<JsonOutput>() {
        return output.data.clone();
    }
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// A step output: text, or data when the text is a JSON object or array.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Text(String),
    Data {
        text: String,
        data: serde_json::Value,
    },
}

impl Output {
    /// A command's stdout (one trailing newline removed) or an agent's text.
    pub fn from_text(text: String) -> Output {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(data) = serde_json::from_str::<serde_json::Value>(&text)
        {
            return Output::Data { text, data };
        }
        Output::Text(text)
    }

    pub fn text(&self) -> &str {
        match self {
            Output::Text(t) => t,
            Output::Data { text, .. } => text,
        }
    }

    /// The output as JSON: a string, or the parsed data.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Output::Text(t) => serde_json::Value::String(t.clone()),
            Output::Data { data, .. } => data.clone(),
        }
    }

    /// The output as a template value: text, or data that renders as the text it was parsed
    /// from. Scalar data (a structured output whose schema is a number, say) is its value.
    pub fn to_value(&self) -> Value {
        match self {
            Output::Text(t) => Value::from(t.as_str()),
            Output::Data { data, .. } if !data.is_object() && !data.is_array() => {
                Value::from_serialize(data)
            }
            Output::Data { text, data } => Value::from_object(JsonOutput {
                text: text.clone(),
                data: data.clone(),
                inner: Value::from_serialize(data),
            }),
        }
    }
}

/// JSON data that renders as the text it was parsed from.
#[derive(Debug)]
struct JsonOutput {
    text: String,
    data: serde_json::Value,
    inner: Value,
}

impl Object for JsonOutput {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.data.is_array() {
            ObjectRepr::Seq
        } else {
            ObjectRepr::Map
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.inner.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.inner.try_iter() {
            Ok(iter) => Enumerator::Values(iter.collect()),
            Err(_) => Enumerator::Empty,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    proptest::proptest! {
        #[test]
        fn a_template_is_text_with_an_opening_tag(text in "[a{}%# ]{0,12}") {
            let opens = text.contains("{{") || text.contains("{%") || text.contains("{#");
            proptest::prop_assert_eq!(is_template(&text), opens);
        }
    }

    #[test]
    fn renders_one_after_another_reuse_one_template_thread() {
        // The thread is back among the idle ones before the caller has the result, so the next
        // render never finds the list empty and starts another.
        let t = Templates::new();
        let before = STARTED.load(Ordering::Relaxed);
        for i in 0..200 {
            let vars = t.variables(&format!("{{{{ a{i} }}}}")).unwrap();
            assert_eq!(vars, vec![format!("a{i}")]);
        }
        assert!(STARTED.load(Ordering::Relaxed) - before <= 1);
    }

    #[test]
    fn uses_names_the_filters_and_tests_the_engine_lacks_and_only_those() {
        let t = Templates::new();
        let uses = t
            .uses(
                "{{ x | upper | nope1 }}{{ 'a | nope2' }} | nope3 {% macro m(y) %}{{ y | nope4 }}{% endmacro %}\
                 {% if x is odd or x is nope5 %}{% filter nope6 %}z{% endfilter %}{% endif %}{{ x | nope1 }}",
            )
            .unwrap();
        assert_eq!(
            uses.unknown,
            [
                Unknown::Filter("nope1".into()),
                Unknown::Filter("nope4".into()),
                Unknown::Test("nope5".into()),
                Unknown::Filter("nope6".into()),
            ]
        );
        assert_eq!(uses.variables, ["x"]);
        let uses = t
            .expression_uses("steps.a.status is nope7 and vars.b | length > 1")
            .unwrap();
        assert_eq!(uses.unknown, [Unknown::Test("nope7".into())]);
        assert_eq!(uses.variables, ["steps.a.status", "vars.b"]);
    }

    #[test]
    fn scalar_structured_data_is_its_value_in_templates() {
        let t = Templates::new();
        let out = Output::Data {
            text: "41".into(),
            data: serde_json::json!(41),
        };
        let ctx = context! { n => out.to_value() };
        assert_eq!(t.render("{{ n + 1 }}", &ctx).unwrap(), "42");
        assert_eq!(out.to_json(), serde_json::json!(41));
    }

    #[test]
    fn undefined_errors_name_the_missing_path() {
        let t = Templates::new();
        let out = Output::from_text(r#"{"records": 1}"#.to_string());
        let ctx = context! { steps => context! { load => context! { output => out.to_value() } } };
        let err = t
            .render("n={{ steps.load.output.recrods }}", &ctx)
            .unwrap_err();
        assert_eq!(
            err.detail(),
            Some("`steps.load.output.recrods` is undefined")
        );
        let err = t
            .render_value(&serde_json::json!("{{ steps.nope.output }}"), &ctx)
            .unwrap_err();
        assert_eq!(err.detail(), Some("`steps.nope` is undefined"));
    }

    #[test]
    fn output_past_the_cap_and_runaway_loops_are_errors() {
        let t = Templates::new();
        let ctx = context! {};
        let err = t
            .render(
                "{% for i in range(9) %}{{ 'x' * 1048576 }}{% endfor %}",
                &ctx,
            )
            .unwrap_err();
        assert_eq!(
            err.detail(),
            Some("rendered text is over 8 MiB (the limit of one template)")
        );
        assert!(t.render("{{ 'x' * 1048576 }}", &ctx).is_ok());
        let err = t
            .eval("range(100000) | map('string') | join('') * 20", &ctx)
            .unwrap_err();
        assert!(err.to_string().contains("over 8 MiB"), "{err}");
        let err = t
            .render(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                &ctx,
            )
            .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::OutOfFuel);
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let t = Templates::new();
        let err = t.render("{{ vars.nope }}", &context! { vars => context!{} });
        assert!(err.is_err());
    }

    #[test]
    fn json_outputs_are_data_and_text() {
        let t = Templates::new();
        let out = Output::from_text(r#"{"records": 100, "items": [1, 2]}"#.to_string());
        let ctx = context! { steps => context! { load => context! { output => out.to_value() } } };
        assert_eq!(
            t.render("{{ steps.load.output.records }}", &ctx).unwrap(),
            "100"
        );
        assert_eq!(
            t.render("{{ steps.load.output }}", &ctx).unwrap(),
            r#"{"records": 100, "items": [1, 2]}"#
        );
        assert_eq!(
            t.render("{{ steps.load.output.items | length }}", &ctx)
                .unwrap(),
            "2"
        );
        let v = t
            .render_value(&serde_json::json!("{{ steps.load.output.records }}"), &ctx)
            .unwrap();
        assert_eq!(v, serde_json::json!(100));
    }

    #[test]
    fn single_expressions_keep_their_type() {
        let t = Templates::new();
        let ctx = context! { steps => context! { a => context! { output => "hello" } } };
        let v = t
            .render_value(&serde_json::json!({"n": "{{ steps.a.output | length }}", "s": "x {{ steps.a.output }}"}), &ctx)
            .unwrap();
        assert_eq!(v, serde_json::json!({"n": 5, "s": "x hello"}));
    }

    #[test]
    fn variables_are_listed_with_their_paths() {
        let t = Templates::new();
        let vars = t
            .variables("{{ steps.research.output }} {{ vars.topic | upper }}")
            .unwrap();
        assert_eq!(vars, ["steps.research.output", "vars.topic"]);
    }
}
