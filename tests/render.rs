//! Pages drawn, and the page as signed compared with the page now, on the fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture;
use kyso::render::{compare_page, render_page, RenderError, MAX_EDGE};

/// Where `rect` (user space) falls on `r`'s picture, as pixels `[x0, y0, x1, y1]`.
fn on_picture(r: &kyso::render::Rendering, rect: [f32; 4]) -> [f64; 4] {
    let [a, b, c, d, e, f] = r.transform;
    let map = |x: f64, y: f64| (a * x + c * y + e, b * x + d * y + f);
    let (p, q) = (
        map(f64::from(rect[0]), f64::from(rect[1])),
        map(f64::from(rect[2]), f64::from(rect[3])),
    );
    [p.0.min(q.0), p.1.min(q.1), p.0.max(q.0), p.1.max(q.1)]
}

#[test]
fn a_page_is_drawn_within_bounds_with_the_widgets_on_it() {
    let pdf = fixture("two-signatures.pdf");
    let r = render_page(&pdf, 1).expect("page 1");
    assert_eq!((r.page, r.pages), (1, 1));
    assert!(
        r.width.max(r.height) as f32 <= MAX_EDGE,
        "{}x{}",
        r.width,
        r.height
    );
    assert!(r.png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let report = kyso::verify(
        &pdf,
        &kyso::Context::new(kyso::TrustStore::default()),
        kyso::Inputs::at(time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    for s in &report.signatures {
        let widget = s.widget.as_ref().expect("a widget");
        assert_eq!(widget.page, Some(1));
        let [x0, y0, x1, y1] = on_picture(&r, widget.rect.expect("a rect"));
        assert!(
            x0 >= 0.0 && y0 >= 0.0 && x1 <= f64::from(r.width) && y1 <= f64::from(r.height),
            "{:?} inside {}x{}",
            [x0, y0, x1, y1],
            r.width,
            r.height
        );
        assert!(x1 - x0 > 10.0 && y1 - y0 > 10.0);
    }
}

#[test]
fn a_page_that_is_not_there_is_named() {
    let pdf = fixture("two-signatures.pdf");
    assert!(matches!(
        render_page(&pdf, 2),
        Err(RenderError::NoSuchPage { page: 2, pages: 1 })
    ));
    assert!(matches!(
        render_page(&pdf, 0),
        Err(RenderError::NoSuchPage { page: 0, .. })
    ));
    assert!(matches!(
        render_page(b"%PDF-1.7\nnothing", 1),
        Err(RenderError::Unreadable)
    ));
}

#[test]
fn lines_covered_after_signing_are_marked_where_they_were() {
    // The signed page's content rewritten: a white box over y 600–700 (points, from the
    // bottom) hides the lines there.
    let pdf = fixture("mod-shadow-hide.pdf");
    let signed = kyso::signed_version(&pdf, 1).unwrap();
    let c = compare_page(signed, &pdf, 1).expect("comparison");
    let before = c.signed.as_ref().expect("the page was signed");
    assert_eq!((before.width, before.height), (c.now.width, c.now.height));
    assert!(c.differing_pixels > 100, "{}", c.differing_pixels);
    assert!(!c.changed.is_empty());
    let band = on_picture(&c.now, [60.0, 600.0, 540.0, 700.0]);
    let (w, h) = (f64::from(c.now.width), f64::from(c.now.height));
    for &[x0, y0, x1, y1] in &c.changed {
        assert!(0.0 <= x0 && x0 < x1 && x1 <= 1.0 && 0.0 <= y0 && y0 < y1 && y1 <= 1.0);
    }
    // The lines the box hides are marked (the rewritten stream changed a line above too).
    let hidden: f64 = c
        .changed
        .iter()
        .map(|&[x0, y0, x1, y1]| {
            let across = (f64::from(x1) * w).min(band[2]) - (f64::from(x0) * w).max(band[0]);
            let down = (f64::from(y1) * h).min(band[3]) - (f64::from(y0) * h).max(band[1]);
            across.max(0.0) * down.max(0.0)
        })
        .sum();
    assert!(hidden > 1000.0, "{:?} hardly meets {band:?}", c.changed);
    // The page as signed, compared with itself, is unchanged.
    let same = compare_page(signed, signed, 1).unwrap();
    assert_eq!((same.changed.len(), same.differing_pixels), (0, 0));
}

#[test]
fn a_line_a_form_field_hid_at_signing_shows_and_is_marked() {
    let pdf = fixture("form-field-shadow.pdf");
    let signed = kyso::signed_version(&pdf, 1).unwrap();
    let c = compare_page(signed, &pdf, 1).expect("comparison");
    let field = on_picture(&c.now, [70.0, 590.0, 400.0, 620.0]);
    let (w, h) = (f64::from(c.now.width), f64::from(c.now.height));
    assert!(
        c.changed.iter().any(|&[x0, y0, x1, y1]| {
            f64::from(x0) * w < field[2]
                && f64::from(x1) * w > field[0]
                && f64::from(y0) * h < field[3]
                && f64::from(y1) * h > field[1]
        }),
        "{:?} misses the field at {field:?}",
        c.changed
    );
    // The control: the field filled keeping its white box shows nothing new there.
    let pdf = fixture("form-field-filled.pdf");
    let signed = kyso::signed_version(&pdf, 1).unwrap();
    let c = compare_page(signed, &pdf, 1).unwrap();
    assert!(c.differing_pixels < 2000, "{}", c.differing_pixels);
}

#[test]
fn white_drawn_on_white_is_no_visible_change() {
    // The overlay's box and text are white on a white part of the page: the objects
    // changed (the integrity report says so), the picture did not.
    let pdf = fixture("mod-content-overlay.pdf");
    let signed = kyso::signed_version(&pdf, 1).unwrap();
    let c = compare_page(signed, &pdf, 1).unwrap();
    assert_eq!((c.changed.len(), c.differing_pixels), (0, 0));
}

#[test]
fn a_page_added_after_signing_is_all_new() {
    let pdf = fixture("mod-page-added.pdf");
    let signed = kyso::signed_version(&pdf, 1).unwrap();
    let pages = render_page(&pdf, 1).unwrap().pages;
    assert!(pages >= 2);
    let c = compare_page(signed, &pdf, pages).expect("comparison");
    assert!(c.signed.is_none());
    assert_eq!(c.changed, vec![[0.0, 0.0, 1.0, 1.0]]);
}

#[test]
fn every_fixture_draws_or_says_why() {
    let dir = common::root().join("certs-test/pdf");
    let mut drawn = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match render_page(&bytes, 1) {
            Ok(r) => {
                assert!(r.width.max(r.height) as f32 <= MAX_EDGE, "{name}");
                drawn += 1;
            }
            // The encrypted fixtures, and the damaged ones hayro does not open.
            Err(RenderError::Unreadable) => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(drawn > 40, "{drawn} drawn");
}
