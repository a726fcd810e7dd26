//! The RPC password as torrents.toml keeps it: the user may write it in plain text; btorrent writes
//! it back as `salted-sha1:<salt>:<digest>`, the digest being SHA-1 iterated 1000 times over
//! the salt and the password. Either form is accepted when read.

use sha1::{Digest as _, Sha1};

const PREFIX: &str = "salted-sha1:";
const ROUNDS: usize = 1000;

fn digest(salt: &str, password: &str) -> String {
    let mut d = Sha1::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    for _ in 1..ROUNDS {
        d = Sha1::new()
            .chain_update(d)
            .chain_update(salt.as_bytes())
            .finalize();
    }
    hex::encode(d)
}

/// Whether `stored` is already the salted form.
pub fn is_hashed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The salted form of `password`; a value already in that form is returned as it is.
pub fn stored_form(password: &str) -> String {
    if is_hashed(password) {
        return password.to_string();
    }
    let salt = hex::encode(rand::random::<[u8; 8]>());
    format!("{PREFIX}{salt}:{}", digest(&salt, password))
}

/// Whether `given` is the password `stored` (plain or salted) stands for. Compared in constant time.
pub fn matches(stored: &str, given: &str) -> bool {
    let (want, got) = match stored.strip_prefix(PREFIX).and_then(|r| r.split_once(':')) {
        Some((salt, hash)) => (hash.to_string(), digest(salt, given)),
        None if is_hashed(stored) => return false,
        None => (digest("", stored), digest("", given)),
    };
    want.len() == got.len()
        && want
            .bytes()
            .zip(got.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_salted_forms_both_match() {
        let s = stored_form("hunter2");
        assert!(is_hashed(&s) && !s.contains("hunter2"), "{s}");
        assert_ne!(s, stored_form("hunter2"), "a fresh salt each time");
        assert_eq!(stored_form(&s), s);
        assert!(matches(&s, "hunter2"));
        assert!(!matches(&s, "hunter3"));
        assert!(matches("hunter2", "hunter2"));
        assert!(!matches("hunter2", "hunter"));
        assert!(!matches("salted-sha1:broken", "x"));
    }
}
