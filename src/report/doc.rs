//! A tiny document model the report is built as once and rendered twice: to Markdown
//! (report.md) and to a self-contained HTML page (report.html: inline CSS and SVG, no script,
//! no network). Inline markup inside text is limited to `**bold**` and `` `code` ``.

use std::fmt::Write;

/// A figure: an SVG plot (already rendered) or the reason it was skipped.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem under `plots/` (e.g. "loss_vs_compute").
    pub name: String,
    pub title: String,
    /// What the plot shows, in one or two sentences.
    pub caption: String,
    pub svg: Option<String>,
    /// Why there is no plot (data absent), when `svg` is None.
    pub skipped: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Block {
    H2(String),
    H3(String),
    P(String),
    /// A table; `class` styles it in HTML (e.g. "headline").
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
        class: Option<&'static str>,
    },
    List(Vec<String>),
    Figure(Figure),
    /// Small print at the bottom (provenance).
    Footer(String),
}

#[derive(Clone, Debug, Default)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(title: impl Into<String>) -> Doc {
        Doc { title: title.into(), blocks: Vec::new() }
    }
    pub fn h2(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::H2(s.into()));
    }
    pub fn h3(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::H3(s.into()));
    }
    pub fn p(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::P(s.into()));
    }
    pub fn table(&mut self, head: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table { head: head.iter().map(|s| s.to_string()).collect(), rows, class: None });
    }
    pub fn list(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    /// The figures, in document order.
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.blocks.iter().filter_map(|b| if let Block::Figure(f) = b { Some(f) } else { None })
    }

    pub fn markdown(&self) -> String {
        let mut w = String::new();
        let _ = writeln!(w, "# {}\n", self.title);
        for b in &self.blocks {
            let _ = match b {
                Block::H2(s) => writeln!(w, "## {s}\n"),
                Block::H3(s) => writeln!(w, "### {s}\n"),
                Block::P(s) => writeln!(w, "{s}\n"),
                Block::Table { head, rows, .. } => {
                    let _ = writeln!(w, "| {} |", head.join(" | "));
                    let _ = writeln!(w, "|{}", "---|".repeat(head.len()));
                    for r in rows {
                        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
                        let _ = writeln!(w, "| {} |", cells.join(" | "));
                    }
                    writeln!(w)
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(w, "- {i}");
                    }
                    writeln!(w)
                }
                Block::Figure(f) => match (&f.svg, &f.skipped) {
                    (Some(_), _) => writeln!(w, "![{}](plots/{}.svg)\n\n*{}*\n", f.title, f.name, f.caption),
                    (None, reason) => {
                        writeln!(w, "*Plot \"{}\" skipped: {}.*\n", f.title, reason.as_deref().unwrap_or("no data"))
                    }
                },
                Block::Footer(s) => writeln!(w, "---\n{s}"),
            };
        }
        w
    }

    pub fn html(&self) -> String {
        let mut w = String::new();
        let _ = write!(
            w,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
            esc(&self.title),
            inline(&self.title)
        );
        for b in &self.blocks {
            let _ = match b {
                Block::H2(s) => writeln!(w, "<h2>{}</h2>", inline(s)),
                Block::H3(s) => writeln!(w, "<h3>{}</h3>", inline(s)),
                Block::P(s) => writeln!(w, "<p>{}</p>", inline(s)),
                Block::Table { head, rows, class } => {
                    let cls = class.map(|c| format!(" class=\"{c}\"")).unwrap_or_default();
                    let _ = write!(w, "<table{cls}>\n<thead><tr>");
                    for h in head {
                        let _ = write!(w, "<th>{}</th>", inline(h));
                    }
                    let _ = writeln!(w, "</tr></thead>\n<tbody>");
                    for r in rows {
                        let _ = write!(w, "<tr>");
                        for c in r {
                            let _ = write!(w, "<td>{}</td>", inline(c));
                        }
                        let _ = writeln!(w, "</tr>");
                    }
                    writeln!(w, "</tbody>\n</table>")
                }
                Block::List(items) => {
                    let _ = writeln!(w, "<ul>");
                    for i in items {
                        let _ = writeln!(w, "<li>{}</li>", inline(i));
                    }
                    writeln!(w, "</ul>")
                }
                Block::Figure(f) => match &f.svg {
                    Some(svg) => writeln!(
                        w,
                        "<figure id=\"{}\" title=\"{}\">\n<div class=\"plot\">{}</div>\n<figcaption>{}</figcaption>\n</figure>",
                        esc(&f.name),
                        esc(&f.title),
                        svg_body(svg),
                        inline(&f.caption)
                    ),
                    None => writeln!(
                        w,
                        "<p class=\"skipped\">Plot &ldquo;{}&rdquo; skipped: {}.</p>",
                        inline(&f.title),
                        inline(f.skipped.as_deref().unwrap_or("no data"))
                    ),
                },
                Block::Footer(s) => writeln!(w, "<footer>{}</footer>", inline(s)),
            };
        }
        w.push_str("</main>\n</body>\n</html>\n");
        w
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
color:#1b1f24;background:#fff;margin:0;line-height:1.45}\
main{max-width:1100px;margin:0 auto;padding:16px 28px 40px}\
h1{font-size:1.6em;border-bottom:2px solid #d0d7de;padding-bottom:6px}\
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:4px}\
h3{font-size:1.05em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}\
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f3f5f7}tbody tr:nth-child(even){background:#fafbfc}\
table.headline{font-size:1.02em;min-width:60%}table.headline td:first-child{font-weight:600}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;background:#f3f5f7;padding:0 3px;border-radius:3px}\
figure{margin:1em 0 1.6em}figure h3{margin-bottom:.3em}\
.plot svg{max-width:100%;height:auto;border:1px solid #e5e8eb}\
figcaption{font-size:.88em;color:#4a535c;max-width:900px}\
p.skipped{color:#6a737d;font-style:italic}\
li{margin:.2em 0}\
footer{margin-top:2.5em;border-top:1px solid #d0d7de;padding-top:8px;font-size:.8em;color:#57606a}";

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// Escapes text and turns `**bold**` and `` `code` `` into HTML.
pub fn inline(s: &str) -> String {
    let mut o = String::new();
    let (mut bold, mut code) = (false, false);
    let mut rest = s;
    while !rest.is_empty() {
        if !code && rest.starts_with("**") {
            o.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = &rest[2..];
        } else if rest.starts_with('`') {
            o.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            o.push_str(&esc(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        o.push_str("</code>");
    }
    if bold {
        o.push_str("</strong>");
    }
    o
}

/// An SVG document without its XML prolog (so it can sit inline in HTML).
fn svg_body(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_and_escaping() {
        assert_eq!(inline("a **b** `c<d>` e"), "a <strong>b</strong> <code>c&lt;d&gt;</code> e");
        let mut d = Doc::new("t");
        d.table(&["x", "y"], vec![vec!["1|2".into(), "3".into()]]);
        assert!(d.markdown().contains("| 1\\|2 | 3 |"));
        assert!(d.html().contains("<td>1|2</td>"));
    }
}
