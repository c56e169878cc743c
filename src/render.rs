//! Pages as a clerk sees them: rendered with hayro (pure Rust, on the CPU), and the page as
//! it was signed compared with the page as it is now, pixel by pixel.
//!
//! Attacker-controlled work is bounded here by size (one page per call, at most
//! [`MAX_EDGE`] pixels on its longer side and [`MAX_PIXELS`] in all) and by the renderer
//! never being trusted not to panic (a panic is [`RenderError::Failed`]); the service adds
//! the time bound (its workers and the call's deadline).

use std::panic::{catch_unwind, AssertUnwindSafe};

use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{PixmapSettings, RenderCache, RenderSettings};

/// The longer side of a rendering at most, in pixels.
pub const MAX_EDGE: f32 = 1400.0;
/// The pixels of a rendering at most.
pub const MAX_PIXELS: f32 = 2_000_000.0;
/// Side of the square cells the comparison marks, in pixels.
const CELL: usize = 8;
/// How far apart two pixels' colours must be (0–255, on any channel) to differ.
const THRESHOLD: u8 = 48;
/// Pixels of a cell that must differ for the cell to be marked (anti-aliasing aside).
const CELL_PIXELS: usize = 2;
/// Marked cells this many cells apart or closer are one area (the words of one line).
const JOIN: usize = 2;
/// Areas a comparison names at most; past that it names the one area around them all.
const MAX_AREAS: usize = 64;

/// Why a page could not be rendered or compared.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The renderer cannot read the document.
    #[error("the document does not open for rendering (damaged or encrypted)")]
    Unreadable,
    /// The page asked for is not in the document.
    #[error("there is no page {page}: the document has {pages}")]
    NoSuchPage {
        /// The page asked for (1-based).
        page: u32,
        /// The pages the document has.
        pages: u32,
    },
    /// The page's size is zero, negative or not a number.
    #[error("page {page} has no size that can be drawn")]
    NoSize {
        /// The page (1-based).
        page: u32,
    },
    /// The renderer stopped on the page's content.
    #[error("the renderer failed on page {page}")]
    Failed {
        /// The page (1-based).
        page: u32,
    },
    /// The picture does not encode.
    #[error("the rendering of page {page} does not encode as PNG")]
    Png {
        /// The page (1-based).
        page: u32,
    },
}

/// One page drawn on white.
#[derive(Debug, Clone)]
pub struct Rendering {
    /// The page (1-based).
    pub page: u32,
    /// The pages of the document.
    pub pages: u32,
    /// The picture's size in pixels.
    pub width: u32,
    /// The picture's height in pixels.
    pub height: u32,
    /// From the page's user space (where `/Rect`s are) to the picture's pixels, with y
    /// downwards: `x' = a·x + c·y + e`, `y' = b·x + d·y + f` for `[a, b, c, d, e, f]`.
    pub transform: [f64; 6],
    /// Pixels per point.
    pub scale: f32,
    /// The picture, PNG.
    pub png: Vec<u8>,
    /// Its pixels, RGBA (opaque), for comparisons.
    rgba: Vec<u8>,
}

/// A page as it was signed beside the page as it is now.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The page as it was signed; `None` when the signed version has no such page.
    pub signed: Option<Rendering>,
    /// The page as it is now, at the same scale.
    pub now: Rendering,
    /// The areas that look different, as fractions of the picture `[x0, y0, x1, y1]` from
    /// its top left corner, at most [`MAX_AREAS`]; the whole page when it was added or
    /// changed size.
    pub changed: Vec<[f32; 4]>,
    /// How many pixels differ.
    pub differing_pixels: u64,
}

/// Renders page `page` (1-based) of `pdf`.
pub fn render_page(pdf: &[u8], page: u32) -> Result<Rendering, RenderError> {
    guarded(page, || {
        let pdf = open(pdf)?;
        draw(&pdf, page, None)
    })
}

/// Renders page `page` of the signed version `signed` and of the document `now` at one
/// scale, and marks where they differ.
pub fn compare_page(signed: &[u8], now: &[u8], page: u32) -> Result<Comparison, RenderError> {
    guarded(page, || {
        let now_pdf = open(now)?;
        let now = draw(&now_pdf, page, None)?;
        let signed_pdf = open(signed)?;
        let signed = match draw(&signed_pdf, page, Some(now.scale)) {
            Ok(r) => Some(r),
            Err(RenderError::NoSuchPage { .. }) => None,
            Err(e) => return Err(e),
        };
        let (changed, differing_pixels) = match &signed {
            Some(s) if s.width == now.width && s.height == now.height => differences(s, &now),
            _ => (
                vec![[0.0, 0.0, 1.0, 1.0]],
                u64::from(now.width) * u64::from(now.height),
            ),
        };
        Ok(Comparison {
            signed,
            now,
            changed,
            differing_pixels,
        })
    })
}

/// Runs `work`, a panic in the renderer being an error about `page`.
fn guarded<T>(page: u32, work: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or(Err(RenderError::Failed { page }))
}

fn open(bytes: &[u8]) -> Result<Pdf, RenderError> {
    Pdf::new(bytes.to_vec()).map_err(|_| RenderError::Unreadable)
}

/// Draws `page` at `scale` when given and within the bounds, else as large as they allow.
fn draw(pdf: &Pdf, page: u32, scale: Option<f32>) -> Result<Rendering, RenderError> {
    let pages = pdf.pages();
    let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    let p = page
        .checked_sub(1)
        .and_then(|i| pages.get(i as usize))
        .ok_or(RenderError::NoSuchPage { page, pages: count })?;
    let (w, h) = p.render_dimensions();
    if !(w.is_finite() && h.is_finite() && w >= 1.0 && h >= 1.0) {
        return Err(RenderError::NoSize { page });
    }
    let largest = (MAX_EDGE / w.max(h)).min((MAX_PIXELS / (w * h)).sqrt());
    // Another page's scale, for a comparison; a page of another size than that one is
    // drawn within the bounds, and then differs in size, which the comparison says.
    let scale = scale.filter(|s| *s <= largest).unwrap_or(largest);
    let (width, height) = ((w * scale) as u32, (h * scale) as u32);
    if width == 0 || height == 0 {
        return Err(RenderError::NoSize { page });
    }
    let cache = RenderCache::new();
    let pixmap = hayro::render(
        p,
        &cache,
        &InterpreterSettings::default(),
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    let transform = (hayro::kurbo::Affine::scale(f64::from(scale))
        * p.initial_transform(true).to_kurbo())
    .as_coeffs();
    let (width, height) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    let rgba = pixmap.data_as_u8_slice().to_vec();
    let png = pixmap.into_png().map_err(|_| RenderError::Png { page })?;
    Ok(Rendering {
        page,
        pages: count,
        width,
        height,
        transform,
        scale,
        png,
        rgba,
    })
}

/// The areas where two renderings of one size differ, and how many pixels do.
fn differences(a: &Rendering, b: &Rendering) -> (Vec<[f32; 4]>, u64) {
    let (w, h) = (a.width as usize, a.height as usize);
    let (cols, rows) = (w.div_ceil(CELL), h.div_ceil(CELL));
    let mut counts = vec![0usize; cols * rows];
    let mut differing = 0u64;
    for (i, (pa, pb)) in a
        .rgba
        .chunks_exact(4)
        .zip(b.rgba.chunks_exact(4))
        .enumerate()
    {
        let far = pa[..3]
            .iter()
            .zip(&pb[..3])
            .any(|(x, y)| x.abs_diff(*y) > THRESHOLD);
        if far {
            differing += 1;
            let (x, y) = (i % w, i / w);
            counts[(y / CELL) * cols + x / CELL] += 1;
        }
    }
    let marked: Vec<bool> = counts.iter().map(|&n| n >= CELL_PIXELS).collect();
    let mut areas = Vec::new();
    let mut seen = vec![false; marked.len()];
    for start in 0..marked.len() {
        if !marked[start] || seen[start] {
            continue;
        }
        // The cells joined to this one (up to `JOIN` cells apart), as one box.
        let (mut x0, mut y0, mut x1, mut y1) = (cols, rows, 0, 0);
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(cell) = stack.pop() {
            let (cx, cy) = (cell % cols, cell / cols);
            (x0, y0, x1, y1) = (x0.min(cx), y0.min(cy), x1.max(cx), y1.max(cy));
            for ny in cy.saturating_sub(JOIN)..=(cy + JOIN).min(rows - 1) {
                for nx in cx.saturating_sub(JOIN)..=(cx + JOIN).min(cols - 1) {
                    let n = ny * cols + nx;
                    if marked[n] && !seen[n] {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
        }
        areas.push([
            (x0 * CELL) as f32 / w as f32,
            (y0 * CELL) as f32 / h as f32,
            (((x1 + 1) * CELL).min(w)) as f32 / w as f32,
            (((y1 + 1) * CELL).min(h)) as f32 / h as f32,
        ]);
    }
    if areas.len() > MAX_AREAS {
        let around = areas.iter().fold([1.0f32, 1.0, 0.0, 0.0], |u, r| {
            [
                u[0].min(r[0]),
                u[1].min(r[1]),
                u[2].max(r[2]),
                u[3].max(r[3]),
            ]
        });
        areas = vec![around];
    }
    (areas, differing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendering(w: u32, h: u32, paint: &[(u32, u32)]) -> Rendering {
        let mut rgba = vec![255u8; (w * h * 4) as usize];
        for &(x, y) in paint {
            let i = ((y * w + x) * 4) as usize;
            rgba[i..i + 3].copy_from_slice(&[0, 0, 0]);
        }
        Rendering {
            page: 1,
            pages: 1,
            width: w,
            height: h,
            transform: [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            scale: 1.0,
            png: Vec::new(),
            rgba,
        }
    }

    #[test]
    fn two_changed_spots_are_two_areas_and_a_lone_pixel_is_none() {
        let before = rendering(64, 64, &[]);
        let mut spots: Vec<(u32, u32)> = (0..4).flat_map(|x| (0..4).map(move |y| (x, y))).collect();
        spots.extend((40..48).flat_map(|x| (50..52).map(move |y| (x, y))));
        // One pixel alone: anti-aliasing, not a change.
        spots.push((20, 30));
        let after = rendering(64, 64, &spots);
        let (areas, differing) = differences(&before, &after);
        assert_eq!(differing, 16 + 16 + 1);
        assert_eq!(
            areas,
            vec![[0.0, 0.0, 0.125, 0.125], [0.625, 0.75, 0.75, 0.875]]
        );
        assert_eq!(differences(&before, &before), (Vec::new(), 0));
    }

    #[test]
    fn the_words_of_a_line_are_one_area() {
        let before = rendering(64, 8, &[]);
        // Two words a cell apart (8 pixels of white between them).
        let words = [(0, 0), (1, 0), (2, 0), (16, 0), (17, 0), (18, 0)];
        let (areas, _) = differences(&before, &rendering(64, 8, &words));
        assert_eq!(areas, vec![[0.0, 0.0, 0.375, 1.0]]);
    }

    #[test]
    fn many_spots_are_named_as_one_area_around_them() {
        let before = rendering(4096, 16, &[]);
        // 100 spots four cells apart.
        let spots: Vec<(u32, u32)> = (0..100)
            .flat_map(|i| [(i * 32, 0), (i * 32 + 1, 0)])
            .collect();
        let (areas, _) = differences(&before, &rendering(4096, 16, &spots));
        assert_eq!(areas, vec![[0.0, 0.0, 3176.0 / 4096.0, 0.5]]);
    }

    #[test]
    fn what_is_not_a_pdf_or_not_a_page_is_named() {
        assert!(matches!(
            render_page(b"not a pdf", 1),
            Err(RenderError::Unreadable)
        ));
    }
}
