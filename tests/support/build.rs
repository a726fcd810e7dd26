//! A tiny bencode builder for hand-made (often malformed) torrents in tests.

#![allow(dead_code)]

/// A bencode value. `B::D` keeps its entries in the order given (for malformed input); `d` and `set` sort them.
#[derive(Clone, Debug)]
pub enum B {
    I(i64),
    S(Vec<u8>),
    L(Vec<B>),
    D(Vec<(Vec<u8>, B)>),
    /// Bytes written as they are (for malformed values).
    Raw(Vec<u8>),
}

pub fn s(v: impl AsRef<[u8]>) -> B {
    B::S(v.as_ref().to_vec())
}

pub fn d(entries: Vec<(&str, B)>) -> B {
    let mut entries: Vec<(Vec<u8>, B)> = entries
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    B::D(entries)
}

impl B {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            B::I(v) => out.extend_from_slice(format!("i{v}e").as_bytes()),
            B::S(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            B::L(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.write(out));
                out.push(b'e');
            }
            B::D(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    B::S(k.clone()).write(out);
                    v.write(out);
                }
                out.push(b'e');
            }
            B::Raw(b) => out.extend_from_slice(b),
        }
    }

    /// Sets (or adds) a dictionary entry, keeping keys sorted.
    pub fn set(mut self, key: &str, value: B) -> B {
        if let B::D(entries) = &mut self {
            entries.retain(|(k, _)| k != key.as_bytes());
            entries.push((key.as_bytes().to_vec(), value));
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self
    }

    pub fn remove(mut self, key: &str) -> B {
        if let B::D(entries) = &mut self {
            entries.retain(|(k, _)| k != key.as_bytes());
        }
        self
    }
}

pub fn path(components: &[&[u8]]) -> B {
    B::L(components.iter().map(s).collect())
}

pub fn file(len: i64, components: &[&[u8]]) -> B {
    d(vec![("length", B::I(len)), ("path", path(components))])
}
