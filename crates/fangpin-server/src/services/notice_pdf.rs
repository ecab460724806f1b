//! The printed village notice (公示) as a PDF: what `publicity::printed_notice`
//! says, laid out on A4 pages with the table's header on every page. The
//! PDF embeds only the glyphs used from the operator's CJK font (krilla
//! subsets it and writes the ToUnicode map, so the text can be searched,
//! copied and extracted). A character the font lacks is refused, never
//! printed as an empty box: a name on a public notice must be legible.

use std::path::Path;
use std::sync::Arc;

use fangpin_domain::publicity::PrintedNotice;
use krilla::Document;
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 50.0;
const BODY_SIZE: f32 = 11.0;
const TITLE_SIZE: f32 = 22.0;
const LINE: f32 = 18.0;
const ROW: f32 = 20.0;
/// Column widths of the table, in points (序号, 户主姓名, 身份证号, 救助类别,
/// 救助金额, 异议截止): 495 in all, the page less its margins.
const COLUMNS: [f32; 6] = [35.0, 80.0, 140.0, 70.0, 85.0, 85.0];
/// Where Debian's fonts-wqy-microhei puts its font: fangpind prints notices
/// in it when `[notice] font` is not set and the file is there.
pub const DEBIAN_CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
/// The largest font file read: the CJK fonts Debian ships are 5 to 20 MB.
pub const MAX_FONT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NoticeFontError {
    #[error("reading the notice font {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the notice font {0} is larger than {MAX_FONT_BYTES} bytes")]
    TooLarge(String),
    #[error("{0} is not a font file this server can read")]
    NotAFont(String),
    #[error("the notice font {0} has no Chinese characters (公示); use a CJK font")]
    NotCjk(String),
}

/// The CJK font notices are printed in (`[notice] font`).
#[derive(Clone)]
pub struct NoticeFont {
    data: Arc<Vec<u8>>,
    /// The face within a collection (.ttc): the first.
    index: u32,
    path: String,
}

impl std::fmt::Debug for NoticeFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticeFont")
            .field("path", &self.path)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl NoticeFont {
    /// Reads and checks the font at start-up, so that a wrong file is found
    /// then and not at the first notice.
    pub fn load(path: &Path) -> Result<NoticeFont, NoticeFontError> {
        let shown = path.display().to_string();
        let read = |source| NoticeFontError::Read {
            path: shown.clone(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > MAX_FONT_BYTES {
            return Err(NoticeFontError::TooLarge(shown));
        }
        let data = std::fs::read(path).map_err(read)?;
        let font = NoticeFont {
            data: Arc::new(data),
            index: 0,
            path: shown.clone(),
        };
        let face = font
            .face()
            .ok_or_else(|| NoticeFontError::NotAFont(shown.clone()))?;
        if "公示".chars().any(|c| face.charmap().map(c).is_none()) {
            return Err(NoticeFontError::NotCjk(shown));
        }
        Ok(font)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn face(&self) -> Option<skrifa::FontRef<'_>> {
        skrifa::FontRef::from_index(self.data.as_slice(), self.index).ok()
    }

    /// The characters of `text` the font has no glyph for, each once.
    pub fn missing(&self, text: &str) -> Vec<char> {
        let face = self.face().expect("checked at load");
        let charmap = face.charmap();
        let mut out: Vec<char> = Vec::new();
        for c in text.chars() {
            if !c.is_whitespace() && charmap.map(c).is_none() && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

/// Measures text in one font size, from the font's own advances.
struct Measure<'a> {
    charmap: skrifa::charmap::Charmap<'a>,
    metrics: skrifa::metrics::GlyphMetrics<'a>,
}

impl<'a> Measure<'a> {
    fn new(face: &skrifa::FontRef<'a>, size: f32) -> Measure<'a> {
        Measure {
            charmap: face.charmap(),
            metrics: face.glyph_metrics(Size::new(size), LocationRef::default()),
        }
    }

    fn width(&self, text: &str) -> f32 {
        text.chars()
            .filter_map(|c| self.charmap.map(c))
            .filter_map(|g| self.metrics.advance_width(g))
            .sum()
    }

    /// Breaks `text` into lines no wider than `max`. Chinese breaks between
    /// any two characters; a phone number, an amount or a date (2024年3月3日)
    /// is kept whole.
    fn wrap(&self, text: &str, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut width = 0.0;
        let mut pieces: Vec<String> = Vec::new();
        for c in text.chars() {
            match pieces.last_mut() {
                Some(last) if joins(last, c) => last.push(c),
                _ => pieces.push(c.to_string()),
            }
        }
        for piece in pieces {
            let w = self.width(&piece);
            if width + w > max && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                width = 0.0;
            }
            line.push_str(&piece);
            width += w;
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// Whether `c` continues the unbreakable run `piece`: one that starts with
/// an ASCII letter or digit takes more of them, '-' and '.', and 年月日
/// right after a digit.
fn joins(piece: &str, c: char) -> bool {
    let Some(first) = piece.chars().next() else {
        return false;
    };
    let last = piece.chars().last().expect("not empty");
    first.is_ascii_alphanumeric()
        && (c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.')
            || (matches!(c, '年' | '月' | '日') && last.is_ascii_digit()))
}

fn rule(surface: &mut Surface, x0: f32, x1: f32, y: f32, width: f32) {
    let mut path = PathBuilder::new();
    path.move_to(x0, y);
    path.line_to(x1, y);
    if let Some(path) = path.finish() {
        surface.set_fill(None);
        surface.set_stroke(Some(Stroke {
            width,
            ..Stroke::default()
        }));
        surface.draw_path(&path);
        surface.set_stroke(None);
        surface.set_fill(Some(krilla::paint::Fill::default()));
    }
}

/// What a page holds, decided before drawing so the footer can say "of N".
enum Block {
    Title,
    Line(String),
    TableHeader,
    Row(usize),
    Gap,
    Signature,
}

/// Lays the notice out and writes the PDF.
pub fn render(notice: &PrintedNotice, font: &NoticeFont) -> Result<Vec<u8>, String> {
    let face = font.face().expect("checked at load");
    let body = Measure::new(&face, BODY_SIZE);
    let title = Measure::new(&face, TITLE_SIZE);
    let width = PAGE_W - 2.0 * MARGIN;

    // The blocks, in reading order, each with its height.
    let mut blocks: Vec<(Block, f32)> = vec![(Block::Title, 2.5 * LINE)];
    for text in &notice.preamble {
        for line in body.wrap(text, width) {
            blocks.push((Block::Line(line), LINE));
        }
    }
    blocks.push((Block::Gap, LINE / 2.0));
    blocks.push((Block::TableHeader, ROW));
    for i in 0..notice.rows.len() {
        blocks.push((Block::Row(i), ROW));
    }
    blocks.push((Block::Gap, LINE));
    for text in &notice.closing {
        for line in body.wrap(text, width) {
            blocks.push((Block::Line(line), LINE));
        }
    }
    blocks.push((Block::Gap, LINE));
    blocks.push((Block::Signature, 2.0 * LINE));

    // Pages: a block that does not fit starts a new page; a page that
    // starts inside the table repeats its header.
    let bottom = PAGE_H - MARGIN - LINE;
    let mut pages: Vec<Vec<(Block, f32)>> = vec![Vec::new()];
    let mut y = MARGIN;
    let mut in_table = false;
    for (block, h) in blocks {
        match block {
            Block::TableHeader => in_table = true,
            Block::Gap if in_table => in_table = false,
            _ => {}
        }
        if y + h > bottom {
            pages.push(Vec::new());
            y = MARGIN;
            if in_table && !matches!(block, Block::TableHeader) {
                pages
                    .last_mut()
                    .expect("a page")
                    .push((Block::TableHeader, y));
                y += ROW;
            }
        }
        pages.last_mut().expect("a page").push((block, y));
        y += h;
    }

    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(notice.title.clone())
            .creator("fangpin".to_string())
            .language("zh-CN".to_string()),
    );
    let kfont = Font::new(font.data.clone().into(), font.index)
        .ok_or_else(|| "the notice font could not be read".to_string())?;
    let count = pages.len();
    for (n, blocks) in pages.into_iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4 is a valid size");
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        let text = |surface: &mut Surface, x: f32, y: f32, size: f32, s: &str| {
            surface.draw_text(
                Point::from_xy(x, y),
                kfont.clone(),
                size,
                s,
                false,
                TextDirection::Auto,
            );
        };
        for (block, top) in blocks {
            // Text sits on a baseline about four fifths down its line.
            let base = top + 0.8 * LINE;
            match block {
                Block::Title => {
                    let w = title.width(&notice.title);
                    text(
                        &mut surface,
                        (PAGE_W - w) / 2.0,
                        top + 1.5 * LINE,
                        TITLE_SIZE,
                        &notice.title,
                    );
                }
                Block::Line(line) => text(&mut surface, MARGIN, base, BODY_SIZE, &line),
                Block::Gap => {}
                Block::TableHeader | Block::Row(_) => {
                    let cells: Vec<&str> = match block {
                        Block::Row(i) => notice.rows[i].iter().map(String::as_str).collect(),
                        _ => notice.columns.to_vec(),
                    };
                    if matches!(block, Block::TableHeader) {
                        rule(&mut surface, MARGIN, MARGIN + width, top, 1.0);
                    }
                    let mut x = MARGIN;
                    for (cell, w) in cells.iter().zip(COLUMNS) {
                        text(&mut surface, x + 3.0, top + 0.75 * ROW, BODY_SIZE, cell);
                        x += w;
                    }
                    let weight = if matches!(block, Block::TableHeader) {
                        1.0
                    } else {
                        0.4
                    };
                    rule(&mut surface, MARGIN, MARGIN + width, top + ROW, weight);
                }
                Block::Signature => {
                    for (i, line) in notice.signature.iter().enumerate() {
                        let w = body.width(line);
                        text(
                            &mut surface,
                            PAGE_W - MARGIN - w,
                            base + i as f32 * LINE,
                            BODY_SIZE,
                            line,
                        );
                    }
                }
            }
        }
        let footer = format!("第{}页 共{}页", n + 1, count);
        let w = body.width(&footer);
        text(
            &mut surface,
            (PAGE_W - w) / 2.0,
            PAGE_H - MARGIN / 2.0,
            BODY_SIZE,
            &footer,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| format!("writing the PDF: {e:?}"))
}

/// Every piece of text the notice prints, for the font check.
pub fn all_text(notice: &PrintedNotice) -> String {
    let mut out = notice.title.clone();
    for part in notice
        .preamble
        .iter()
        .chain(&notice.closing)
        .chain(notice.signature.iter())
        .chain(notice.rows.iter().flatten())
    {
        out.push_str(part);
    }
    for c in notice.columns {
        out.push_str(c);
    }
    out.push_str("第页共0123456789");
    out
}
