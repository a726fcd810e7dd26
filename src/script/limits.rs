//! What keeps a script from aborting or exhausting the process through the shape of its values: a
//! bound on how deeply values nest, a thread with ample stack for whatever in rhai walks values
//! recursively, and a size-bounded writer for everything that serialises a script value.
//!
//! - Nesting: every variable read (and the `this` of a method) is checked by the engine's variable
//!   callback (`check_read`); a value nested deeper than [`MAX_NESTING`] stops the script at that
//!   line. Building a deeper value needs a read of the value being built, so building stops there,
//!   after at most [`MAX_NESTING`] steps. What a single expression or a chain of calls can add
//!   without a read is bounded by the expression depth and call-level limits. The same walk counts
//!   the values a value holds, up to [`MAX_VALUES`]: rhai's array and map limits do not look inside
//!   function pointers and closures, through which a value can double at every step.
//! - Stack: scripts run on threads with [`SCRIPT_STACK`] bytes of stack (`on_script_stack`), where
//!   rhai's recursive size accounting, clones, formatting and drops of the deepest value a script can
//!   hold have room (a method can grow `this` without a read, up to rhai's array limit); the values a
//!   run leaves behind are dropped there too. `==` and `!=` on arrays and maps, which in rhai take
//!   ten times the stack a level, are replaced by ones that refuse values nested too deeply.
//! - Size: [`Bounded`] is a writer (both `fmt` and `io`) that refuses to grow past its limit, so a
//!   huge value costs at most the limit in memory and time before it is refused.

use std::cell::Cell;
use std::sync::Mutex;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

/// The longest string a script may hold, in bytes.
pub const MAX_STRING: usize = 16 << 20;
/// How many array elements one value may hold, nested arrays included.
pub const MAX_ARRAY: usize = 1_000_000;
/// How many map entries one value may hold, nested maps included.
pub const MAX_MAP: usize = 100_000;

/// How deeply arrays, maps and function pointers' bound arguments may nest in a script value: less
/// than `from_json` reads (128), so whatever `to_json` writes reads back.
pub const MAX_NESTING: usize = 100;

/// The stack of a thread that runs scripts. Address space only: pages are used as the stack grows.
/// A method can grow `this` without reading a variable (`loop { this = [this]; }`), up to rhai's
/// array limit (a million levels, minutes of work); rhai's size accounting, clones, drops and
/// formatting of such a value take 200 to 350 bytes of stack a level.
pub const SCRIPT_STACK: usize = 1 << 30;

thread_local! {
    /// Whether this thread was started with [`SCRIPT_STACK`] (no need to hop again).
    static ROOMY: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one started with [`SCRIPT_STACK`] bytes of stack.
pub(crate) fn mark_roomy() {
    ROOMY.with(|r| r.set(true));
}

/// Runs `f` on a thread with [`SCRIPT_STACK`] bytes of stack (this one if it has them), waiting for
/// it; the call deadline of this thread applies there too. If no such thread can be started, `f`
/// runs here.
pub(crate) fn on_script_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if ROOMY.with(Cell::get) {
        return f();
    }
    let deadline = super::host::call_deadline();
    let slot = Mutex::new(Some(f));
    let run = || {
        let f = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let f = f.expect("runs once");
        match deadline {
            Some(d) => super::host::with_call_deadline(d, f),
            None => f(),
        }
    };
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("btorrent-script".into())
            .stack_size(SCRIPT_STACK)
            .spawn_scoped(s, || {
                mark_roomy();
                run()
            });
        match spawned {
            Ok(h) => h
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => run(),
        }
    })
}

/// How many values one value may hold in all, counting those bound in function pointers and closures
/// (rhai's own array and map limits do not look inside those, and a clone copies them).
pub const MAX_VALUES: usize = 1_200_000;

/// What is wrong with a value's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    TooDeep,
    TooBig,
}

impl Shape {
    /// The one-line reason.
    pub fn message(self) -> String {
        match self {
            Shape::TooDeep => too_deep_message(),
            Shape::TooBig => format!(
                "a value holds more than {MAX_VALUES} values in all (arrays, maps and what closures bind)"
            ),
        }
    }
}

/// Checks that `v` nests at most `max` levels deep and holds at most [`MAX_VALUES`] values. Looks
/// at most `max + 1` levels down and at most [`MAX_VALUES`] values, so a cyclic or exponentially
/// shared value (through closures) is refused, not walked for ever; a shared value locked by the
/// operation in progress is skipped (the next read sees it).
pub fn check_shape(v: &Dynamic, max: usize) -> Result<(), Shape> {
    walk_all(v, max).map(|_| ())
}

/// What a walk found: how many values, and whether any was a function pointer or a shared value
/// (whose contents rhai's size limits do not count).
struct Walk {
    budget: usize,
    hidden: bool,
}

/// Walks `v`; returns how many values it holds and whether any is hidden from rhai's size limits.
fn walk_all(v: &Dynamic, max: usize) -> Result<(usize, bool), Shape> {
    let mut w = Walk {
        budget: MAX_VALUES,
        hidden: false,
    };
    walk(v, max, &mut w)?;
    Ok((MAX_VALUES - w.budget, w.hidden))
}

fn walk(v: &Dynamic, max: usize, w: &mut Walk) -> Result<(), Shape> {
    w.budget = w.budget.checked_sub(1).ok_or(Shape::TooBig)?;
    if !could_nest(v) {
        return Ok(());
    }
    if max == 0 {
        return Err(Shape::TooDeep);
    }
    if v.is_shared() {
        w.hidden = true;
        return match v.read_lock::<Dynamic>() {
            Some(inner) => walk(&inner, max, w),
            None => Ok(()),
        };
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().try_for_each(|x| walk(x, max - 1, w));
    }
    if let Some(m) = v.read_lock::<Map>() {
        return m.values().try_for_each(|x| walk(x, max - 1, w));
    }
    if let Some(f) = v.read_lock::<FnPtr>() {
        w.hidden = true;
        return f.iter_curry().try_for_each(|x| walk(x, max - 1, w));
    }
    Ok(())
}

/// Registers `==` and `!=` for arrays and maps in place of rhai's, which recurse through the engine
/// (about 2 KB of stack a level): these refuse values nested too deeply, then compare item by item.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn("==", |ctx: NativeCallContext, a: &mut Array, b: Array| {
        arrays_equal(&ctx, a, b)
    });
    engine.register_fn("!=", |ctx: NativeCallContext, a: &mut Array, b: Array| {
        arrays_equal(&ctx, a, b).map(|e| !e)
    });
    engine.register_fn("==", |ctx: NativeCallContext, a: &mut Map, b: Map| {
        maps_equal(&ctx, a, b)
    });
    engine.register_fn("!=", |ctx: NativeCallContext, a: &mut Map, b: Map| {
        maps_equal(&ctx, a, b).map(|e| !e)
    });
}

fn shallow_enough<'a>(items: impl Iterator<Item = &'a Dynamic>) -> Result<(), Box<EvalAltResult>> {
    let mut w = Walk {
        budget: MAX_VALUES,
        hidden: false,
    };
    items
        .into_iter()
        .try_for_each(|x| walk(x, MAX_NESTING - 1, &mut w))
        .map_err(|shape| EvalAltResult::ErrorRuntime(shape.message().into(), Position::NONE).into())
}

fn arrays_equal(
    ctx: &NativeCallContext,
    a: &mut Array,
    mut b: Array,
) -> Result<bool, Box<EvalAltResult>> {
    if a.len() != b.len() {
        return Ok(false);
    }
    shallow_enough(a.iter().chain(b.iter()))?;
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        if !items_equal(ctx, x, y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn maps_equal(
    ctx: &NativeCallContext,
    a: &mut Map,
    mut b: Map,
) -> Result<bool, Box<EvalAltResult>> {
    if a.len() != b.len() {
        return Ok(false);
    }
    shallow_enough(a.values().chain(b.values()))?;
    for (k, x) in a.iter_mut() {
        let Some(y) = b.get_mut(k) else {
            return Ok(false);
        };
        if !items_equal(ctx, x, y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `x == y` as rhai decides it (values of different types without an `==` are unequal).
fn items_equal(
    ctx: &NativeCallContext,
    x: &mut Dynamic,
    y: &mut Dynamic,
) -> Result<bool, Box<EvalAltResult>> {
    let same_type = x.type_id() == y.type_id();
    match ctx.call_native_fn_raw("==", true, &mut [x, y]) {
        Ok(v) => Ok(v.as_bool().unwrap_or(false)),
        Err(e) if matches!(&*e, EvalAltResult::ErrorFunctionNotFound(sig, _) if sig.starts_with("==")) => {
            if same_type {
                Err(e)
            } else {
                Ok(false)
            }
        }
        Err(e) => Err(e),
    }
}

/// Whether `v` holds arrays, maps or function pointers nested more than `max` deep.
pub fn too_deep(v: &Dynamic, max: usize) -> bool {
    check_shape(v, max) == Err(Shape::TooDeep)
}

fn could_nest(v: &Dynamic) -> bool {
    v.is_shared() || v.is_array() || v.is_map() || v.is_fnptr()
}

/// Whether a script error is the one [`check_read`] raises.
pub(crate) fn is_shape_error(v: &Dynamic) -> bool {
    v.read_lock::<rhai::ImmutableString>().is_some_and(|s| {
        s.as_str() == Shape::TooDeep.message() || s.as_str() == Shape::TooBig.message()
    })
}

/// The one-line reason for a value nested too deeply.
pub fn too_deep_message() -> String {
    format!("a value is nested more than {MAX_NESTING} levels deep (arrays, maps or closures in one another)")
}

/// The error a primitive gives for a value nested too deeply or too big.
pub fn check_depth(func: &str, v: &Dynamic) -> Result<(), Box<EvalAltResult>> {
    check_shape(v, MAX_NESTING).map_err(|e| format!("{func}: {}", e.message()).into())
}

/// At most how many reads of the same array or map in a row may skip the walk once it was walked.
///
/// Reading an array in a loop (`a[i]`) would otherwise walk it at every step. Between two walks, a
/// read that skips can let the value grow in place: deeper by at most an expression's depth
/// (`a[0] = [[a]]`), so by at most `REREAD_SKIPS` times 128 levels (a few MB of stack), and larger
/// only through a copy bound in a function pointer (`a[0] = Fn("f").curry(a)`; arrays, maps and
/// strings are counted by rhai at every change), at most doubling with each read: so a value of `n`
/// values skips at most log2([`MAX_VALUES`] / `n`) reads, and only while no walk met a function
/// pointer or a shared value. A value built anew (`a = [a]`) is a new array: walked at its first read.
const REREAD_SKIPS: u32 = 64;

thread_local! {
    /// The array or map walked last on this thread (address, length) and how many reads may skip.
    static LAST_WALKED: Cell<(usize, usize, u32)> = const { Cell::new((0, 0, 0)) };
}

/// Where an array or map (not shared) lives, and its length: same address and length, same value
/// unless changed in place.
fn identity(v: &Dynamic) -> Option<(usize, usize)> {
    if v.is_shared() {
        return None;
    }
    if let Some(a) = v.read_lock::<Array>() {
        return Some((&*a as *const Array as usize, a.len()));
    }
    if let Some(m) = v.read_lock::<Map>() {
        return Some((&*m as *const Map as usize, m.len()));
    }
    None
}

/// [`check_shape`] for a value being read, skipping the walk of the array or map walked last for a
/// few reads (see [`REREAD_SKIPS`]).
fn check_read_value(v: &Dynamic) -> Result<(), Shape> {
    if !could_nest(v) {
        return Ok(());
    }
    let id = identity(v);
    if let Some((addr, len)) = id {
        let (last_addr, last_len, skips) = LAST_WALKED.with(Cell::get);
        if (addr, len) == (last_addr, last_len) && skips > 0 {
            LAST_WALKED.with(|c| c.set((addr, len, skips - 1)));
            return Ok(());
        }
    }
    let walked = walk_all(v, MAX_NESTING);
    let entry = match (id, &walked) {
        (Some((addr, len)), Ok((count, false))) => {
            let doublings = (MAX_VALUES / (*count).max(1)).ilog2();
            (addr, len, doublings.min(REREAD_SKIPS))
        }
        // A function pointer or shared value met: no skipping until a clean walk.
        _ => (0, 0, 0),
    };
    LAST_WALKED.with(|c| c.set(entry));
    walked.map(|_| ())
}

/// The engine's variable callback: reading a variable (or running a method on a value) nested too
/// deeply, or holding too much, stops the script there. Never resolves a variable itself.
pub(crate) fn check_read(
    name: &str,
    ctx: &rhai::EvalContext,
) -> Result<Option<Dynamic>, Box<EvalAltResult>> {
    let check = |v: Option<&Dynamic>| v.map_or(Ok(()), check_read_value);
    if let Err(shape) = check(ctx.scope().get(name)).and_then(|_| check(ctx.this_ptr())) {
        // Thrown like a script error (not a "system" one, whose line rhai replaces with that of the
        // outermost call), so the line of the read is kept.
        return Err(EvalAltResult::ErrorRuntime(shape.message().into(), Position::NONE).into());
    }
    Ok(None)
}

/// What a run returns, unless it is nested too deeply or holds too much to hand to a thread with an
/// ordinary stack (then it is dropped here, and the run returns `()`).
pub(crate) fn shallow(v: Dynamic) -> Dynamic {
    if check_shape(&v, MAX_NESTING).is_err() {
        return Dynamic::UNIT;
    }
    v
}

/// The reason for rhai's "too large" errors, naming the limit.
pub(crate) fn too_large(what: &str) -> String {
    match what {
        "Length of string" => format!(
            "a string would be longer than {} (the limit)",
            crate::units::human_bytes(MAX_STRING as u64)
        ),
        "Size of array/BLOB" => {
            format!("arrays would hold more than {MAX_ARRAY} elements in all (the limit)")
        }
        "Size of object map" => {
            format!("maps would hold more than {MAX_MAP} entries in all (the limit)")
        }
        other => format!("{other} too large"),
    }
}

/// A writer that holds at most `limit` bytes: writing past it fails, and nothing more is kept.
pub struct Bounded {
    pub buf: Vec<u8>,
    limit: usize,
    /// Set once a write went past the limit.
    pub overflowed: bool,
}

impl Bounded {
    pub fn new(limit: usize) -> Bounded {
        Bounded {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    fn take(&mut self, bytes: &[u8]) -> bool {
        if self.overflowed || self.buf.len() + bytes.len() > self.limit {
            self.overflowed = true;
            return false;
        }
        self.buf.extend_from_slice(bytes);
        true
    }
}

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.take(bytes) {
            Ok(bytes.len())
        } else {
            Err(std::io::Error::other("size limit reached"))
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.take(s.as_bytes()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

/// `value` as pretty JSON of at most `limit` bytes.
pub fn to_json_bounded(value: &Dynamic, limit: usize) -> Result<String, String> {
    check_shape(value, MAX_NESTING).map_err(Shape::message)?;
    let mut w = Bounded::new(limit);
    match serde_json::to_writer_pretty(&mut w, value) {
        Ok(()) => Ok(String::from_utf8(w.buf).expect("serde_json writes UTF-8")),
        Err(_) if w.overflowed => Err(format!(
            "the JSON text would be longer than {}",
            crate::units::human_bytes(limit as u64)
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Dynamic {
        let mut v = Dynamic::from_array(Array::new());
        for _ in 1..depth {
            v = Dynamic::from_array(vec![v]);
        }
        v
    }

    #[test]
    fn depth_is_measured_in_container_levels() {
        assert!(!too_deep(&Dynamic::from(1_i64), 0));
        assert!(!too_deep(&nested(3), 3));
        assert!(too_deep(&nested(4), 3));
        let mut m = Map::new();
        m.insert("a".into(), nested(2));
        assert!(too_deep(&Dynamic::from_map(m), 2));
    }

    #[test]
    fn the_writer_stops_at_its_limit() {
        use std::fmt::Write;
        let mut w = Bounded::new(5);
        assert!(w.write_str("abc").is_ok());
        assert!(w.write_str("def").is_err());
        assert!(w.overflowed && w.buf == b"abc");
        let wide = Dynamic::from_array(vec![Dynamic::from("x".repeat(100)); 100]);
        assert!(to_json_bounded(&wide, 1000)
            .unwrap_err()
            .contains("longer than"));
        assert!(to_json_bounded(&wide, 1 << 20).is_ok());
        assert!(to_json_bounded(&nested(MAX_NESTING + 1), 1 << 20)
            .unwrap_err()
            .contains("nested"));
    }
}
