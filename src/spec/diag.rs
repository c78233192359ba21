//! Diagnostics: `SpecError` (file, 1-based line and column, field path, message and the
//! offending source line with a caret), its construction from byte spans and from toml
//! errors, and `Ctx`, the small checkers `resolve` uses so every rejected value is reported
//! the same way: where it is, which field, what was expected and what was found.

use super::raw::{KeyIndex, S};
use std::fmt;
use std::ops::{Bound, Range};

/// A sweep file problem, located precisely enough to fix without reading the code.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub path: String,
    /// 1-based; 0 when there is no position (e.g. the file could not be read).
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    /// Field path such as `grid.lr[2]`; empty when unknown (syntax errors).
    pub field: String,
    pub message: String,
    /// The source line the error points into; empty when `line` is 0.
    pub snippet: String,
    /// Number of carets to draw (the span's length on that line, at least 1).
    pub caret_len: usize,
    /// 1-based column of the caret in `snippet`: `col`, unless the line was too long to show
    /// whole and `snippet` is the part of it around the error.
    pub snippet_col: usize,
}

/// Longest message kept: a value echoed in it (a 5M-character string) is cut, not printed whole.
const MAX_MESSAGE: usize = 600;
/// Characters of the offending line shown; a longer line is shown around the error.
const SNIPPET_WINDOW: usize = 120;

/// `s` cut to `max` characters, saying how many were left out.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} more characters)", &s[..cut], s[cut..].chars().count()),
    }
}

/// The part of `line` around 1-based column `col` that is shown, the caret's column in it and
/// the carets that fit.
fn window(line: &str, col: usize, caret_len: usize) -> (String, usize, usize) {
    let n = line.chars().count();
    if n <= SNIPPET_WINDOW {
        return (line.to_string(), col, caret_len);
    }
    let start = (col - 1).saturating_sub(SNIPPET_WINDOW / 3).min(n - SNIPPET_WINDOW);
    let end = start + SNIPPET_WINDOW;
    let mut shown: String = line.chars().skip(start).take(SNIPPET_WINDOW).collect();
    let mut caret_col = col - start;
    if start > 0 {
        shown.insert(0, '…');
        caret_col += 1;
    }
    if end < n {
        shown.push('…');
    }
    (shown, caret_col, caret_len.min(end.saturating_sub(col - 1)).max(1))
}

impl SpecError {
    /// An error at a byte span of `src`.
    pub fn at(src: &str, path: &str, span: Range<usize>, field: &str, message: &str) -> Self {
        let start = floor_char_boundary(src, span.start.min(src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        // Control characters are shown as U+FFFD: printed raw, an escape sequence in the sweep
        // file would be run by the terminal. One character for one keeps the caret aligned.
        let snippet: String = src[line_start..line_end]
            .trim_end_matches('\r')
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c })
            .collect();
        let end = span.end.clamp(start, line_end);
        let col = src[line_start..start].chars().count() + 1;
        let caret_len = src[start..floor_char_boundary(src, end)].chars().count().max(1);
        let (snippet, snippet_col, caret_len) = window(&snippet, col, caret_len);
        SpecError {
            path: path.to_string(),
            line: src[..start].matches('\n').count() + 1,
            col,
            field: clip(field, 200),
            message: clip(message, MAX_MESSAGE),
            caret_len,
            snippet,
            snippet_col,
        }
    }

    /// An error without a position (I/O).
    pub fn unlocated(path: &str, message: &str) -> Self {
        let (line, col, caret_len) = (0, 0, 0);
        let (field, snippet) = (String::new(), String::new());
        let (path, message, snippet_col) = (path.to_string(), clip(message, MAX_MESSAGE), 0);
        SpecError { path, line, col, field, message, snippet, caret_len, snippet_col }
    }

    /// Convert a toml syntax/type/unknown-key error, naming the field when the index or
    /// the message allows. Uses `message()`: toml's Display draws its own caret art.
    pub fn from_toml(err: &toml::de::Error, src: &str, path: &str, index: &KeyIndex) -> Self {
        let raw = err.message().trim().replace('\n', ", ");
        let mut span = err.span().unwrap_or(0..0);
        // toml leaves the message empty for some syntax errors (a file ending after `=`, a
        // control character in a comment): say what is wrong there instead.
        // A control character anywhere on the line is the error, whatever toml read it as (in a
        // comment it reports "expected newline, `#`", or nothing).
        let line_has_control = {
            let at = floor_char_boundary(src, span.start.min(src.len()));
            let from = src[..at].rfind('\n').map_or(0, |i| i + 1);
            let to = src[at..].find('\n').map_or(src.len(), |i| at + i);
            src[from..to].chars().any(is_control)
        };
        let raw = if raw.is_empty() || line_has_control {
            let (at, msg) = syntax_hint(src, span.start);
            span = at..at + 1;
            msg
        } else {
            raw
        };
        let field = match index.path_at(span.start) {
            Some(p) => p.to_string(),
            None => field_from_message(&raw),
        };
        let message = if raw.contains("expected a borrowed string") {
            // toml cannot give positions inside a table written with dotted keys.
            "write this table inline (`key = { ... }`) or under its own [header]".to_string()
        } else {
            // Rust type names mean nothing to someone editing a sweep file.
            raw.replace("expected i64", "expected an integer").replace("expected f64", "expected a number")
        };
        SpecError::at(src, path, span, &field, &message)
    }
}

/// A control character TOML forbids everywhere, comments included (U+0000-U+001F but tab and
/// line ends, and U+007F).
fn is_control(c: char) -> bool {
    (c < ' ' && c != '\t' && c != '\n' && c != '\r') || c == '\u{7f}'
}

/// What is wrong at byte `at` of `src` when toml does not say: a control character on that
/// line (TOML allows only tab, even in comments), the end of the file, or bad syntax. Returns
/// the position to point at and the message.
fn syntax_hint(src: &str, at: usize) -> (usize, String) {
    let at = floor_char_boundary(src, at.min(src.len()));
    let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[at..].find('\n').map_or(src.len(), |i| at + i);
    let control = src[at..line_end].char_indices().map(|(i, c)| (at + i, c)).find(|&(_, c)| is_control(c));
    let control = control
        .or_else(|| src[line_start..at].char_indices().map(|(i, c)| (line_start + i, c)).find(|&(_, c)| is_control(c)));
    if let Some((i, c)) = control {
        let msg = format!(
            "control character U+{:04X} is not allowed in a TOML file, not even in a comment (in a string, write \\u{:04X})",
            c as u32, c as u32
        );
        return (i, msg);
    }
    if src[at..].trim().is_empty() {
        return (at, "the file ends here, but a value is expected (after `=`, or a closing `]`, `}` or quote)".into());
    }
    (at, "invalid TOML syntax here".into())
}

/// `unknown field `foo`` -> `foo`; `duplicate key `w` in table `grid`` -> `grid.w`.
fn field_from_message(msg: &str) -> String {
    let ticked: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    match (ticked.first(), msg.contains("in table")) {
        (Some(key), true) if ticked.len() > 1 => format!("{}.{key}", ticked[1]),
        (Some(key), _) if msg.starts_with("unknown field") || msg.contains("duplicate key") => key.to_string(),
        _ => String::new(),
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (path, line, col) = (&self.path, self.line, self.col);
        write!(f, "error: {path}:{line}:{col}: ")?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if line == 0 {
            return Ok(());
        }
        let gutter = line.to_string().len();
        // Keep tabs so the caret lines up with the snippet however tabs are rendered.
        let pad: String =
            (self.snippet.chars().take(self.snippet_col - 1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        writeln!(f)?;
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{line} | {}", self.snippet)?;
        write!(f, "{:gutter$} | {pad}{}", "", "^".repeat(self.caret_len))
    }
}

impl std::error::Error for SpecError {}

/// Everything needed to turn a span into a `SpecError`, plus value checkers.
pub struct Ctx<'a> {
    pub src: &'a str,
    pub path: &'a str,
    pub index: KeyIndex,
}

pub type Res<T> = Result<T, SpecError>;

impl Ctx<'_> {
    pub fn err(&self, span: Range<usize>, field: &str, message: &str) -> SpecError {
        SpecError::at(self.src, self.path, span, field, message)
    }

    /// Error located at a key or table found through the index (file start if absent,
    /// e.g. a missing top-level table).
    pub fn err_key(&self, key: &str, field: &str, message: &str) -> SpecError {
        self.err(self.index.span_of(key).unwrap_or(0..0), field, message)
    }

    /// An integer in [min, max].
    pub fn int(&self, v: &S<i64>, field: &str, min: i64, max: i64) -> Res<i64> {
        let x = *v.get_ref();
        if x < min {
            Err(self.err(v.span(), field, &format!("must be at least {min}, got {x}")))
        } else if x > max {
            Err(self.err(v.span(), field, &format!("must be at most {max}, got {x}")))
        } else {
            Ok(x)
        }
    }

    /// A finite float inside `range` (bounds may be open, closed or absent).
    pub fn float(&self, v: &S<f64>, field: &str, range: (Bound<f64>, Bound<f64>)) -> Res<f64> {
        let x = *v.get_ref();
        if x.is_finite() && std::ops::RangeBounds::contains(&range, &x) {
            return Ok(x);
        }
        let want = describe(range);
        Err(self.err(v.span(), field, &format!("must be {want}, got {x}")))
    }

    /// One of `allowed` (a closed set of names).
    pub fn choice<'s>(&self, v: &'s S<String>, field: &str, allowed: &[&str]) -> Res<&'s str> {
        let x = v.get_ref().as_str();
        if allowed.contains(&x) {
            return Ok(x);
        }
        let list = allowed.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>();
        let msg = format!("unknown value \"{}\"; expected one of {}", clip(x, 80), list.join(", "));
        Err(self.err(v.span(), field, &msg))
    }

    /// One of the values `all`, named by `name` (a closed set, parsed): `choice`'s check and
    /// message, and the value instead of its name.
    pub fn pick<T: Copy>(&self, v: &S<String>, field: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Res<T> {
        let names: Vec<&str> = all.iter().map(|&t| name(t)).collect();
        let x = self.choice(v, field, &names)?;
        Ok(all[names.iter().position(|n| *n == x).expect("choice returns one of the names")])
    }
}

fn describe((lo, hi): (Bound<f64>, Bound<f64>)) -> String {
    use Bound::*;
    match (lo, hi) {
        (Included(a), Unbounded) => format!(">= {a}"),
        (Excluded(a), Unbounded) => format!("> {a}"),
        (Unbounded, _) => "a finite number".to_string(),
        (lo, hi) => {
            let (l, a) = if let Included(a) = lo { ('[', a) } else { ('(', bound(lo)) };
            let (h, b) = if let Included(b) = hi { (']', b) } else { (')', bound(hi)) };
            format!("in {l}{a}, {b}{h}")
        }
    }
}

fn bound(b: Bound<f64>) -> f64 {
    match b {
        Bound::Included(x) | Bound::Excluded(x) => x,
        Bound::Unbounded => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_char_counted() {
        let src = "a = 1\nbé = \"x\"\n";
        let e = SpecError::at(src, "f.toml", 12..15, "bé", "bad");
        assert_eq!((e.line, e.col, e.caret_len), (2, 6, 3));
        assert_eq!(e.snippet, "bé = \"x\"");
    }

    #[test]
    fn display_has_location_field_and_caret() {
        let src = "[grid]\nlr = [1e-2, -3]\n";
        let e = SpecError::at(src, "s.toml", 19..21, "grid.lr[1]", "must be > 0, got -3");
        let text = e.to_string();
        assert!(text.starts_with("error: s.toml:2:13: field `grid.lr[1]`: must be > 0"));
        assert!(text.contains("2 | lr = [1e-2, -3]"), "{text}");
        assert!(text.ends_with("  |             ^^"), "{text}");
    }

    /// A 5M-character value is neither echoed whole in the message nor in
    /// the snippet; the caret still points at the error inside the shown part of the line.
    #[test]
    fn huge_values_are_cut_in_message_and_snippet() {
        let value = "x".repeat(5_000_000);
        let src = format!("name = \"{value}\" # end\n");
        let e = SpecError::at(&src, "h.toml", 7..src.len() - 7, "sweep.name", &format!("bad \"{value}\""));
        assert_eq!((e.line, e.col), (1, 8));
        let text = e.to_string();
        assert!(text.len() < 2000, "{} bytes", text.len());
        assert!(text.contains("more characters)"), "{}", &text[..300]);
        assert!(text.contains("1 | name = \"xxx") && text.contains("xxx…\n"), "{text}");
        let caret_line = text.lines().last().unwrap();
        assert_eq!(caret_line.find('^'), Some(4 + 7), "{caret_line}");
        // The far end of a long line: the window ends with the line and starts with an ellipsis.
        let e = SpecError::at(&src, "h.toml", src.len() - 6..src.len() - 5, "", "comment");
        assert!(e.snippet.starts_with('…') && e.snippet.ends_with("\" # end"), "{}", e.snippet);
        assert_eq!(e.snippet.chars().nth(e.snippet_col - 1), Some('#'));
    }

    #[test]
    fn empty_toml_messages_are_explained() {
        assert!(syntax_hint("a = 1\nb =", 10).1.contains("the file ends here"));
        let (at, msg) = syntax_hint("a = 1 # bell \u{7}\n", 6);
        assert_eq!(at, 13);
        assert!(msg.contains("control character U+0007"), "{msg}");
    }

    #[test]
    fn unlocated_has_no_snippet() {
        let e = SpecError::unlocated("x.toml", "No such file");
        assert_eq!(e.to_string(), "error: x.toml:0:0: No such file");
    }

    #[test]
    fn field_names_from_toml_messages() {
        assert_eq!(field_from_message("unknown field `foo`, expected `a`"), "foo");
        assert_eq!(field_from_message("duplicate key `w` in table `grid`"), "grid.w");
        assert_eq!(field_from_message("invalid array, expected `]`"), "");
    }

    #[test]
    fn range_descriptions() {
        use Bound::*;
        assert_eq!(describe((Excluded(0.0), Included(1.0))), "in (0, 1]");
        assert_eq!(describe((Included(0.0), Excluded(1.0))), "in [0, 1)");
        assert_eq!(describe((Included(0.0), Unbounded)), ">= 0");
    }
}
