//! Scripts that try to abort or exhaust the process through the shape of their values: values nested
//! ever deeper (by every way a script can nest one), `to_json` and `from_json` of deep or huge values,
//! and a property test of random values through `to_json` and `from_json`. Each stops at its limit,
//! quickly, with one line naming the script and the line.

use std::time::{Duration, Instant};

use crate::support::host::ScriptRig;
use btorrent::script::limits::{to_json_bounded, too_deep, MAX_NESTING};
use btorrent::script::Dispatcher;
use rhai::{Array, Dynamic, Map};

/// Runs `source` (which must fail at line `line`) and checks the error says `want`. The line proves
/// the script stopped inside its loop, near the limit; the time bound is only a sanity check, loose
/// enough for a busy machine (each case takes well under a second alone).
fn stops_at(rig: &ScriptRig, name: &str, source: &str, line: usize, want: &str) {
    let started = Instant::now();
    let err = rig.script_fails(name, source);
    assert!(
        err.starts_with(&format!("{}: line {line}:", rig.path(name).display()))
            && err.contains(want)
            && !err.contains('\n'),
        "{name}: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{name}: took {:?}",
        started.elapsed()
    );
}

#[test]
fn every_way_of_nesting_stops_at_the_limit_with_the_line() {
    let rig = ScriptRig::new("", None);
    let cases = [
        ("array.rhai", "let a = [];\nfor i in 0..20000 {\n    a = [a];\n}\n", 3),
        ("map.rhai", "let m = #{};\nfor i in 0..20000 {\n    m = #{ inner: m };\n}\n", 3),
        ("index.rhai", "let a = [0];\nfor i in 0..20000 {\n    a[0] = a;\n}\n", 3),
        ("field.rhai", "let m = #{};\nfor i in 0..20000 {\n    m.x = m;\n}\n", 3),
        ("push.rhai", "let a = [];\nfor i in 0..20000 {\n    let b = [];\n    b.push(a);\n    a = b;\n}\n", 5),
        ("curry.rhai", "fn f(x) { x }\nlet p = Fn(\"f\");\nfor i in 0..20000 {\n    p = Fn(\"f\").curry(p);\n}\n", 4),
        ("closure.rhai", "let c = || 1;\nfor i in 0..20000 {\n    let inner = c;\n    c = || inner;\n}\n", 3),
        ("method.rhai", "fn grow() {\n    this = [this];\n}\nlet a = [];\nfor i in 0..20000 {\n    a.grow();\n}\n", 6),
        // A method growing `this` without reading a variable, then comparing it with itself (rhai's
        // own comparison takes about 2 KB of stack a level).
        ("self_eq.rhai", "fn grow() {\n    for k in 0..1000 { this = [this]; }\n    this == this\n}\nlet a = [];\na.grow();\n", 3),
        ("fn.rhai", "fn wrap(x) {\n    [x]\n}\nlet a = [];\nfor i in 0..20000 {\n    a = wrap(a);\n}\n", 6),
    ];
    for (name, source, line) in cases {
        stops_at(&rig, name, source, line, "nested more than 100 levels");
    }
    // Closures bind copies that rhai's size limits do not count: a value doubling at each step.
    stops_at(
        &rig,
        "double.rhai",
        "fn f(x) { x }\nlet p = Fn(\"f\");\nfor i in 0..20000 {\n    p = p.curry(p);\n}\n",
        4,
        "holds more than 1200000 values",
    );
    // The same in place, with the array read twice a step (reads of an array just walked may skip
    // the walk for a while; this must not let it grow past the limit).
    stops_at(
        &rig,
        "double_in_place.rhai",
        "fn f(x, y) { x }\nlet a = [0];\nfor i in 0..100 {\n    a[0] = Fn(\"f\").curry(a, a);\n}\n",
        4,
        "holds more than 1200000 values",
    );
    // Nesting up to the limit is fine, and to_json / from_json carry such a value.
    rig.script(
        "ok.rhai",
        "let a = [];\nfor i in 0..98 { a = [a]; }\nlet b = from_json(to_json(a));\nprint(`same ${to_json(b) == to_json(a)} ${a == b}`);\nprint(`eq ${[1, [2], #{a: [1]}] == [1, [2], #{a: [1]}]} ${[1] != [2]} ${#{a: 1} == #{a: 2}} ${[1, \"a\"] == [1, 'a']}`);\n",
    );
    assert_eq!(rig.count("same true true"), 1, "{:#?}", rig.lines.lock());
    assert_eq!(
        rig.count("eq true true false true"),
        1,
        "{:#?}",
        rig.lines.lock()
    );
}

#[test]
fn a_handler_nesting_deeply_is_reported_and_later_events_are_handled() {
    let rig = ScriptRig::new("", Some(Duration::from_secs(10)));
    let dispatcher = Dispatcher::start(rig.host.clone());
    rig.script(
        "deep.rhai",
        "every(0.05, || {\n    let a = [];\n    for i in 0..20000 { a = [a]; }\n});\nlet n = 0;\nevery(0.05, || { n += 1; print(`alive ${n}`); });\n",
    );
    rig.wait_for("handlers after the failures", |l| {
        l.iter().filter(|x| x.contains("nested more than")).count() >= 3
            && l.iter().any(|x| x == "alive 3")
    });
    let lines = rig.lines.lock().clone();
    let failed: Vec<_> = lines.iter().filter(|l| l.contains("nested")).collect();
    assert!(
        failed
            .iter()
            .all(|l| l.contains("deep.rhai: line 3:") && !l.contains('\n')),
        "{lines:#?}"
    );
    dispatcher.stop(Duration::from_secs(5));
}

/// The peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn to_json_and_from_json_stop_at_their_limits_quickly() {
    let rig = ScriptRig::new("", None);
    let before = peak_rss();
    let started = Instant::now();
    // 3 MB of control characters: 18 MB of JSON escapes, past the 16 MiB limit of a string.
    let err = rig.script_fails(
        "big.rhai",
        "let s = \"\";\ns.pad(3000000, '\\x01');\nlet j = to_json([s]);\n",
    );
    assert!(
        err.contains("line 3:")
            && err.contains("to_json: the JSON text would be longer than 16.00 MiB"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 200 << 20, "memory grew by {grown} bytes");

    let started = Instant::now();
    let err = rig.script_fails(
        "parse.rhai",
        "let t = \"\";\nt.pad(100000, '[');\nlet v = from_json(t);\n",
    );
    assert!(
        err.contains("line 3:") && err.contains("from_json: recursion limit"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A small deterministic generator (xorshift), so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random value: scalars, strings with any characters, arrays and maps, nested up to `depth`; with
/// `spine`, exactly `depth` deep (one child at each level goes all the way down).
fn random_value(rng: &mut Rng, depth: usize, spine: bool) -> Dynamic {
    if spine && depth > 0 {
        let mut items: Vec<Dynamic> = (0..rng.below(3))
            .map(|_| random_value(rng, (depth - 1).min(3), false))
            .collect();
        let at = rng.below(items.len() as u64 + 1) as usize;
        items.insert(at, random_value(rng, depth - 1, true));
        if rng.below(2) == 0 {
            return Dynamic::from_array(items);
        }
        let m: Map = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}").into(), v))
            .collect();
        return Dynamic::from_map(m);
    }
    let kind = if depth == 0 {
        rng.below(4)
    } else {
        rng.below(7)
    };
    match kind {
        0 => Dynamic::from(rng.next() as i64 >> rng.below(64)),
        1 => Dynamic::from(rng.below(2) == 0),
        2 => Dynamic::UNIT,
        3 => {
            let len = rng.below(20) as usize;
            let s: String = (0..len)
                .map(|_| char::from_u32(rng.below(0x800) as u32).unwrap_or('?'))
                .collect();
            Dynamic::from(s)
        }
        4 | 5 => {
            // Mostly one child, so some values are deep.
            let len = if rng.below(3) == 0 { rng.below(5) } else { 1 };
            let a: Array = (0..len)
                .map(|_| random_value(rng, depth - 1, false))
                .collect();
            Dynamic::from_array(a)
        }
        _ => {
            let len = rng.below(4);
            let m: Map = (0..len)
                .map(|i| (format!("k{i}").into(), random_value(rng, depth - 1, false)))
                .collect();
            Dynamic::from_map(m)
        }
    }
}

fn depth(v: &Dynamic) -> usize {
    if let Some(a) = v.read_lock::<Array>() {
        return 1 + a.iter().map(depth).max().unwrap_or(0);
    }
    if let Some(m) = v.read_lock::<Map>() {
        return 1 + m.values().map(depth).max().unwrap_or(0);
    }
    0
}

#[test]
fn random_values_round_trip_through_json_or_stop_at_a_limit() {
    let seed = crate::support::env_or("SCRIPT_FUZZ_SEED", 0x5eed_u64);
    let rounds = crate::support::env_or("SCRIPT_FUZZ_ROUNDS", 3000_u64);
    let mut rng = Rng(seed | 1);
    let mut deep_ones = 0;
    for round in 0..rounds {
        let max_depth = 1 + rng.below(MAX_NESTING as u64 + 20) as usize;
        let spine = rng.below(2) == 0;
        let v = random_value(&mut rng, max_depth, spine);
        deep_ones += usize::from(spine && max_depth > MAX_NESTING);
        let limit = 1 + rng.below(4096) as usize;
        let deep = depth(&v) > MAX_NESTING;
        assert_eq!(too_deep(&v, MAX_NESTING), deep, "round {round}");
        match to_json_bounded(&v, usize::MAX) {
            Err(e) => assert!(deep && e.contains("nested"), "round {round}: {e}"),
            Ok(full) => {
                assert!(!deep, "round {round}");
                // Bounded: the same text when it fits, refused when it does not.
                match to_json_bounded(&v, limit) {
                    Ok(t) => assert_eq!(t, full, "round {round}"),
                    Err(e) => assert!(full.len() > limit && e.contains("longer"), "round {round}"),
                }
                // And back: what from_json makes of it prints the same JSON.
                let parsed: serde_json::Value = serde_json::from_str(&full).unwrap();
                let back = rhai::serde::to_dynamic(parsed).unwrap();
                assert_eq!(
                    to_json_bounded(&back, usize::MAX).unwrap(),
                    full,
                    "round {round}"
                );
            }
        }
    }
    assert!(deep_ones > 0, "values past the nesting limit were tried");
}
