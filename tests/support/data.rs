//! Test data: deterministic, incompressible bytes, files and trees of them, and comparing two trees byte
//! for byte.

use std::path::{Path, PathBuf};

/// `len` pseudo-random bytes, the same for the same `seed` on every run (SplitMix64), different for
/// different seeds.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The names of what `dir` holds, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Writes [`random_bytes`]`(len, seed)` to `path`, creating folders, and returns them.
pub fn write_random(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let data = random_bytes(len, seed);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &data).unwrap();
    data
}

/// Writes `files` (path relative to `root`, size) with pseudo-random content (seeded 1, 2, ... in
/// order), creating folders.
pub fn write_tree(root: &Path, files: &[(&str, usize)]) {
    for (i, (rel, len)) in files.iter().enumerate() {
        write_random(&root.join(rel), *len, i as u64 + 1);
    }
}

/// A file of `len` zero bytes that takes no disk (a hole): large inputs for tests that must not fill
/// the disk.
pub fn sparse_file(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Copies the files and folders under `from` into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Every file under `a` exists under `b` with the same bytes, and nothing more.
pub fn assert_same_tree(a: &Path, b: &Path) {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    walk(a, a, &mut fa);
    walk(b, b, &mut fb);
    fa.sort();
    fb.sort();
    assert_eq!(fa, fb, "file lists differ");
    for f in fa {
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
        );
        assert!(x == y, "{} differs", f.display());
    }
}

/// Flips the byte at `offset` of `path` and gives the file back its modification time: rot that
/// neither resume data nor a size/mtime check can see.
pub fn rot_byte(path: &Path, offset: u64) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut data = std::fs::read(path).unwrap();
    data[offset as usize] ^= 0x40;
    std::fs::write(path, data).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}
