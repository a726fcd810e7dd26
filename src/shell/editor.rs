//! The line editor: emacs keys, Tab completion in a menu, hints from history (→ or Ctrl-F takes one),
//! a history file (a line typed with a leading space is not saved), the command name coloured by
//! whether it exists, and the external printer that puts background output above the prompt.

use std::path::{Path, PathBuf};

use nu_ansi_term::{Color, Style};
use reedline::{
    default_emacs_keybindings, ColumnarMenu, Completer, DefaultHinter, Editor, Emacs,
    ExternalPrinter, FileBackedHistory, Highlighter, KeyCode, KeyModifiers, Menu, MenuBuilder,
    MenuEvent, Painter, Reedline, ReedlineEvent, ReedlineMenu, StyledText, Suggestion,
};

use super::complete::ShellCompleter;
use super::prompt::SharedDrawn;
use crate::script::Catalog;
use crate::torrents::Torrents;

/// Lines kept in the history file.
pub const HISTORY_LINES: usize = 5000;

/// The history file: `.btorrent_history` next to torrents.toml.
pub fn history_path(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(".btorrent_history"),
        _ => PathBuf::from(".btorrent_history"),
    }
}

/// Colours the first word: green for a known command, red for an unknown one.
/// It also records the line and cursor it is given (each time the editor draws) in `drawn`.
struct CommandHighlighter {
    /// The scripts folder comes from the service's copy of torrents.toml: no file is read here.
    torrents: Torrents,
    drawn: SharedDrawn,
}

impl Highlighter for CommandHighlighter {
    fn highlight(&self, line: &str, cursor: usize) -> StyledText {
        {
            let mut d = self.drawn.lock();
            d.line = line.to_string();
            d.cursor = cursor;
        }
        let mut out = StyledText::new();
        let start = line.len() - line.trim_start().len();
        let end = line[start..]
            .find(char::is_whitespace)
            .map_or(line.len(), |i| start + i);
        let word = &line[start..end];
        if !word.is_empty() {
            let dir = self.torrents.config().ok().map(|c| c.scripts_dir());
            let known = Catalog::load(dir.as_deref()).0.get(word).is_some();
            let color = if known { Color::Green } else { Color::Red };
            out.push((Style::new(), line[..start].to_string()));
            out.push((Style::new().fg(color), word.to_string()));
            out.push((Style::new(), line[end..].to_string()));
        } else {
            out.push((Style::new(), line.to_string()));
        }
        out
    }
}

/// The completion menu, closed whenever there is nothing to offer: Tab where no completion applies
/// (after `b-show `, say) does nothing, instead of drawing a menu that says `NO RECORDS FOUND`.
struct QuietMenu(ColumnarMenu);

impl Menu for QuietMenu {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn indicator(&self) -> &str {
        self.0.indicator()
    }
    fn is_active(&self) -> bool {
        self.0.is_active()
    }
    fn menu_event(&mut self, event: MenuEvent) {
        self.0.menu_event(event)
    }
    fn can_quick_complete(&self) -> bool {
        self.0.can_quick_complete()
    }
    fn can_partially_complete(
        &mut self,
        values_updated: bool,
        editor: &mut Editor,
        completer: &mut dyn Completer,
    ) -> bool {
        self.0
            .can_partially_complete(values_updated, editor, completer)
    }
    fn update_values(&mut self, editor: &mut Editor, completer: &mut dyn Completer) {
        self.0.update_values(editor, completer);
        if self.0.get_values().is_empty() {
            self.0.menu_event(MenuEvent::Deactivate);
        }
    }
    fn update_working_details(
        &mut self,
        editor: &mut Editor,
        completer: &mut dyn Completer,
        painter: &Painter,
    ) {
        self.0.update_working_details(editor, completer, painter);
        if self.0.get_values().is_empty() {
            self.0.menu_event(MenuEvent::Deactivate);
        }
    }
    fn replace_in_buffer(&self, editor: &mut Editor) {
        self.0.replace_in_buffer(editor)
    }
    fn menu_required_lines(&self, terminal_columns: u16) -> u16 {
        self.0.menu_required_lines(terminal_columns)
    }
    fn menu_string(&self, available_lines: u16, use_ansi_coloring: bool) -> String {
        self.0.menu_string(available_lines, use_ansi_coloring)
    }
    fn min_rows(&self) -> u16 {
        self.0.min_rows()
    }
    fn get_values(&self) -> &[Suggestion] {
        self.0.get_values()
    }
}

/// Builds the editor. A history file that cannot be opened is reported and replaced by an in-memory
/// history.
pub fn build(
    torrents: &Torrents,
    printer: ExternalPrinter<String>,
    drawn: SharedDrawn,
) -> (Reedline, Option<String>) {
    let mut keys = default_emacs_keybindings();
    keys.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu("completion".into()),
            ReedlineEvent::MenuNext,
        ]),
    );
    keys.add_binding(
        KeyModifiers::SHIFT,
        KeyCode::BackTab,
        ReedlineEvent::MenuPrevious,
    );
    let menu = ColumnarMenu::default().with_name("completion");
    let path = history_path(torrents.path());
    let (history, warning) = match FileBackedHistory::with_file(HISTORY_LINES, path.clone()) {
        Ok(h) => (h, None),
        Err(e) => (
            FileBackedHistory::new(HISTORY_LINES).expect("in-memory history"),
            Some(format!(
                "history is not saved: cannot open {}: {e}",
                path.display()
            )),
        ),
    };
    let editor = Reedline::create()
        .with_history(Box::new(history))
        .with_history_exclusion_prefix(Some(" ".into()))
        .with_hinter(Box::new(
            DefaultHinter::default().with_style(Style::new().fg(Color::DarkGray)),
        ))
        .with_completer(Box::new(ShellCompleter {
            torrents: torrents.clone(),
        }))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(QuietMenu(menu))))
        .with_edit_mode(Box::new(Emacs::new(keys)))
        .with_highlighter(Box::new(CommandHighlighter {
            torrents: torrents.clone(),
            drawn,
        }))
        .use_bracketed_paste(true)
        .with_external_printer(printer);
    (editor, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keystroke_reads_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, "[settings]\ndht = false\n").unwrap();
        let torrents = Torrents::open(&path);
        torrents.config().unwrap();
        let h = CommandHighlighter {
            torrents: torrents.clone(),
            drawn: SharedDrawn::default(),
        };
        let typed = "b-list --all";
        for n in 1..=typed.len() {
            h.highlight(&typed[..n], n);
        }
        // A new file is the watcher's to read, not the highlighter's.
        std::fs::write(&path, "[settings]\ndht = true\n").unwrap();
        h.highlight(typed, typed.len());
        assert_eq!(torrents.loads(), 1, "a keystroke read torrents.toml");
    }
}
