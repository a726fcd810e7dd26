//! Writing a [`Config`] back into the document it was read from through `toml_edit`, so a user's
//! comments, key order and formatting survive every save: a setting is written only where it differs
//! from what the document already says, and each `[[torrent]]` table is matched to its entry by
//! info-hash and changed key by key.

use anyhow::{Context as _, Result};
use toml_edit::{Item, Table};

use super::{Config, FileShape, Settings};

impl Config {
    /// Settings are written only where they differ from what the document already implies, so a user's
    /// file keeps its shape; a file that did not exist gets a full, readable `[settings]` table.
    pub(super) fn sync_settings(&mut self) -> Result<()> {
        // The RPC password is never written back as plain text.
        if let Some(p) = &self.settings.rpc_password {
            self.settings.rpc_password = Some(crate::rpc::password::stored_form(p));
        }
        let implied = if self.existed {
            let shape: FileShape = toml::from_str(&self.doc.to_string())?;
            Some(shape.settings.unwrap_or_default())
        } else {
            None
        };
        if implied.as_ref() == Some(&self.settings) {
            return Ok(());
        }
        let as_table = |s: &Settings| match toml::Value::try_from(s) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        let old = implied.as_ref().map(as_table).unwrap_or_default();
        let wanted = toml_edit::ser::to_document(&self.settings)?;
        let new = as_table(&self.settings);
        let table = self
            .doc
            .entry("settings")
            .or_insert_with(|| Item::Table(Table::new()))
            .as_table_mut()
            .context("`settings` in the file is not a table")?;
        if implied.is_none() {
            table.set_position(0);
        }
        for (key, item) in wanted.iter() {
            if implied.is_some() && old.get(key) == new.get(key) {
                continue;
            }
            // A table of settings (`bandwidth_groups`) is written inline, on its key's line.
            let fresh = item
                .clone()
                .into_value()
                .ok()
                .context("setting is not a value")?;
            match table.get_mut(key).and_then(Item::as_value_mut) {
                Some(v) => {
                    let decor = v.decor().clone();
                    *v = fresh;
                    *v.decor_mut() = decor;
                }
                None => {
                    table.insert(key, Item::Value(fresh));
                }
            }
        }
        // A setting that was written and is now at its default (a limit or a seeding goal
        // lifted by the RPC's session-set, the queue or a schedule turned off, `tracker_bind`
        // unset) leaves the file, so the next read does not bring it back.
        for key in old.keys().filter(|k| !new.contains_key(*k)) {
            table.remove(key);
        }
        Ok(())
    }

    pub(super) fn sync_torrents(&mut self) -> Result<()> {
        if self.torrents.is_empty() {
            self.doc.remove("torrent");
            return Ok(());
        }
        let arr = self
            .doc
            .entry("torrent")
            .or_insert_with(|| Item::ArrayOfTables(Default::default()))
            .as_array_of_tables_mut()
            .context("`torrent` in the file is not an array of tables ([[torrent]])")?;
        let hash_of = |t: &Table| {
            t.get("info_hash")
                .and_then(Item::as_str)
                .map(str::to_ascii_lowercase)
        };
        let mut old: Vec<Table> = std::mem::take(arr).into_iter().collect();
        // Where the entries were in the file: a table read from it renders at its old position,
        // whatever its place in the array, so each entry (and any table inside it) is given this
        // one; the stable order of rendering is then the list's (a `queue-move` sticks).
        let at = old.iter().filter_map(Table::position).min();
        let mut new_arr = toml_edit::ArrayOfTables::new();
        for t in &self.torrents {
            let wanted = toml_edit::ser::to_document(t)?;
            let mut table = match old
                .iter()
                .position(|o| hash_of(o).as_deref() == Some(&t.info_hash))
            {
                Some(i) => old.remove(i),
                None => Table::new(),
            };
            for (key, item) in wanted.iter() {
                let same = table.get(key).map(|i| i.to_string().trim().to_string())
                    == Some(item.to_string().trim().to_string());
                if !same {
                    match (
                        table.get_mut(key).and_then(Item::as_value_mut),
                        item.as_value(),
                    ) {
                        (Some(v), Some(w)) => {
                            let decor = v.decor().clone();
                            *v = w.clone();
                            *v.decor_mut() = decor;
                        }
                        _ => {
                            table.insert(key, item.clone());
                        }
                    }
                }
            }
            let stale: Vec<String> = table
                .iter()
                .map(|(k, _)| k.to_string())
                .filter(|k| !wanted.contains_key(k))
                .collect();
            for k in stale {
                table.remove(&k);
            }
            if let Some(at) = at {
                place_at(&mut table, at);
            }
            new_arr.push(table);
        }
        *arr = new_arr;
        Ok(())
    }
}

/// Gives `table` and every table inside it the document position `at`.
fn place_at(table: &mut Table, at: usize) {
    table.set_position(at);
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(t) => place_at(t, at),
            Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| place_at(t, at)),
            _ => {}
        }
    }
}
