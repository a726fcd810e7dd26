//! The line editor: emacs keys, Tab completion in a menu, hints from history (→ or Ctrl-F takes one),
//! a history file (a line typed with a leading space is not saved), the command name coloured by
//! whether it exists, and the external printer that puts background output above the prompt.

use std::path::{Path, PathBuf};

use nu_ansi_term::{Color, Style};
use reedline::{
    default_emacs_keybindings, ColumnarMenu, DefaultHinter, Emacs, ExternalPrinter,
    FileBackedHistory, Highlighter, KeyCode, KeyModifiers, MenuBuilder, Reedline, ReedlineEvent,
    ReedlineMenu, StyledText,
};

use super::complete::ShellCompleter;
use crate::config::Config;
use crate::script::Catalog;

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
struct CommandHighlighter {
    config_path: PathBuf,
}

impl Highlighter for CommandHighlighter {
    fn highlight(&self, line: &str, _cursor: usize) -> StyledText {
        let mut out = StyledText::new();
        let start = line.len() - line.trim_start().len();
        let end = line[start..]
            .find(char::is_whitespace)
            .map_or(line.len(), |i| start + i);
        let word = &line[start..end];
        if !word.is_empty() {
            let dir = Config::load(&self.config_path)
                .ok()
                .map(|c| c.scripts_dir());
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

/// Builds the editor. A history file that cannot be opened is reported and replaced by an in-memory
/// history.
pub fn build(config_path: &Path, printer: ExternalPrinter<String>) -> (Reedline, Option<String>) {
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
    let path = history_path(config_path);
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
            config_path: config_path.to_path_buf(),
        }))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
        .with_edit_mode(Box::new(Emacs::new(keys)))
        .with_highlighter(Box::new(CommandHighlighter {
            config_path: config_path.to_path_buf(),
        }))
        .use_bracketed_paste(true)
        .with_external_printer(printer);
    (editor, warning)
}
