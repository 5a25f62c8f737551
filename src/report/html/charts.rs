//! Hand-written inline SVG: a dot with its interval on a shared axis (forest plots), the axis
//! itself, horizontal bars, and the two-sided bar chart of distinctive terms. Every chart has
//! a `<title>` (read by screen readers, shown as a tooltip) and its numbers also appear as text
//! beside it, so nothing is told by colour or position alone.

use maud::{html, Markup};

/// Width of a forest-plot cell and of its axis, in CSS pixels.
pub const CELL_W: f64 = 130.0;
const PAD: f64 = 6.0;

/// A linear scale from `[lo, hi]` to `[PAD, width − PAD]`.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub width: f64,
}

impl Scale {
    pub fn new(lo: f64, hi: f64, width: f64) -> Self {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        Self { lo, hi, width }
    }
    /// `[0, hi]` with `hi` the largest of `values` rounded up to a tenth (at least 0.1, at most
    /// 1 for shares).
    pub fn shares(values: impl IntoIterator<Item = f64>, width: f64) -> Self {
        let m = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let hi = ((m * 10.0).ceil() / 10.0).clamp(0.1, 1.0);
        Self::new(0.0, hi, width)
    }
    /// `[−m, m]` around zero, `m` the largest absolute value rounded up to a hundredth.
    pub fn symmetric(values: impl IntoIterator<Item = f64>, width: f64) -> Self {
        let m = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |a, v| a.max(v.abs()));
        let m = ((m * 100.0).ceil() / 100.0).max(0.01);
        Self::new(-m, m, width)
    }
    pub fn x(&self, v: f64) -> f64 {
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        round1(PAD + t * (self.width - 2.0 * PAD))
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A dot at `v` with a line over `ci` (none when `ci` is `None`), and a zero line when the
/// scale crosses zero.
pub fn dot_ci(s: &Scale, v: f64, ci: Option<[f64; 2]>, title: &str) -> Markup {
    let h = 18.0;
    html! {
        svg.dot width=(s.width) height=(h) viewBox=(format!("0 0 {} {h}", s.width)) role="img" aria-label=(title) {
            title { (title) }
            rect.track x=(PAD) y="8.5" width=(s.width - 2.0 * PAD) height="1" {}
            @if s.lo < 0.0 && s.hi > 0.0 {
                line.zero x1=(s.x(0.0)) x2=(s.x(0.0)) y1="2" y2="16" {}
            }
            @if let Some([lo, hi]) = ci.filter(|c| c[0].is_finite() && c[1].is_finite()) {
                line.ci x1=(s.x(lo)) x2=(s.x(hi)) y1="9" y2="9" {}
                line.ci x1=(s.x(lo)) x2=(s.x(lo)) y1="5" y2="13" {}
                line.ci x1=(s.x(hi)) x2=(s.x(hi)) y1="5" y2="13" {}
            }
            @if v.is_finite() {
                circle.pt cx=(s.x(v)) cy="9" r="4" {}
            }
        }
    }
}

/// The axis of a forest-plot column: ticks at the ends and the middle (and zero), labelled.
pub fn axis(s: &Scale) -> Markup {
    let mut ticks = [s.lo, (s.lo + s.hi) / 2.0, s.hi];
    if s.lo < 0.0 && s.hi > 0.0 {
        ticks[1] = 0.0;
    }
    let fmt = |v: f64| {
        if v == 0.0 {
            "0".to_string()
        } else {
            format!("{v:.2}")
        }
    };
    html! {
        svg.axis width=(s.width) height="16" viewBox=(format!("0 0 {} 16", s.width)) aria-hidden="true" {
            line x1=(s.x(s.lo)) x2=(s.x(s.hi)) y1="2" y2="2" {}
            @for (i, t) in ticks.iter().enumerate() {
                line x1=(s.x(*t)) x2=(s.x(*t)) y1="0" y2="5" {}
                text x=(s.x(*t)) y="14" text-anchor=(match i { 0 => "start", 2 => "end", _ => "middle" }) { (fmt(*t)) }
            }
        }
    }
}

/// A horizontal bar of `v` on `s` (from the scale's low end), `class` choosing its colour.
pub fn bar(s: &Scale, v: f64, class: &str, title: &str) -> Markup {
    let w = (s.x(v) - s.x(s.lo)).max(if v > 0.0 { 1.0 } else { 0.0 });
    html! {
        svg.bar width=(s.width) height="12" viewBox=(format!("0 0 {} 12", s.width)) role="img" aria-label=(title) {
            title { (title) }
            rect.track x=(PAD) y="5.5" width=(s.width - 2.0 * PAD) height="1" {}
            rect class=(class) x=(s.x(s.lo)) y="1" width=(round1(w)) height="10" {}
        }
    }
}

/// One row of the two-sided chart of distinctive terms: `a`'s term (bar to the left, its z)
/// and `b`'s (bar to the right).
pub struct TermRow<'a> {
    pub a: Option<(&'a str, f64)>,
    pub b: Option<(&'a str, f64)>,
}

/// The two-sided bar chart: left half for `a`'s terms, right half for `b`'s, bars as long as
/// the terms' |z| on one shared scale, each term and z written beside its bar.
pub fn two_sided(rows: &[TermRow], a: &str, b: &str) -> Markup {
    let (w, row_h, label_w) = (720.0, 18.0, 150.0);
    let mid = w / 2.0;
    let half = mid - label_w - 10.0;
    let zmax = rows
        .iter()
        .flat_map(|r| [r.a.map(|x| x.1.abs()), r.b.map(|x| x.1.abs())])
        .flatten()
        .fold(1.96f64, f64::max);
    let len = |z: f64| round1(half * (z.abs() / zmax));
    let h = row_h * rows.len() as f64 + 24.0;
    let title = format!("Distinctive terms: {a} on the left, {b} on the right, bar length |z|");
    html! {
        svg.terms width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(title) {
            title { (title) }
            text.side x=(mid - 8.0) y="12" text-anchor="end" { "← " (a) }
            text.side x=(mid + 8.0) y="12" text-anchor="start" { (b) " →" }
            line.zero x1=(mid) x2=(mid) y1="16" y2=(h) {}
            // |z| = 1.96, the two-sided 5% line for one term.
            line.sig x1=(mid - len(1.96)) x2=(mid - len(1.96)) y1="16" y2=(h) {}
            line.sig x1=(mid + len(1.96)) x2=(mid + len(1.96)) y1="16" y2=(h) {}
            @for (i, r) in rows.iter().enumerate() {
                @let y = 20.0 + row_h * i as f64;
                @if let Some((t, z)) = r.a {
                    rect.side-a x=(mid - len(z)) y=(y) width=(len(z)) height=(row_h - 5.0) {}
                    text x=(mid - len(z) - 4.0) y=(y + 10.0) text-anchor="end" { (t) " " tspan.z { (format!("{:.1}", z.abs())) } }
                }
                @if let Some((t, z)) = r.b {
                    rect.side-b x=(mid) y=(y) width=(len(z)) height=(row_h - 5.0) {}
                    text x=(mid + len(z) + 4.0) y=(y + 10.0) text-anchor="start" { (t) " " tspan.z { (format!("{:.1}", z.abs())) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_round_up_and_clamp() {
        let s = Scale::shares([0.12, 0.33, f64::NAN], 100.0);
        assert_eq!((s.lo, s.hi), (0.0, 0.4));
        assert_eq!(s.x(0.0), PAD);
        assert_eq!(s.x(0.4), 100.0 - PAD);
        assert_eq!(s.x(2.0), 100.0 - PAD, "values beyond the axis are clamped");
        let z = Scale::symmetric([-0.031, 0.02], 100.0);
        assert_eq!((z.lo, z.hi), (-0.04, 0.04));
        assert_eq!(z.x(0.0), 50.0);
        assert_eq!(Scale::shares([], 10.0).hi, 0.1);
    }

    #[test]
    fn charts_are_closed_svg_with_titles() {
        let s = Scale::shares([0.5], 150.0);
        let m = dot_ci(&s, 0.25, Some([0.2, 0.3]), "x <&> y").into_string();
        assert!(m.starts_with("<svg") && m.ends_with("</svg>"), "{m}");
        assert!(m.contains("<title>x &lt;&amp;&gt; y</title>"), "{m}");
        assert!(m.contains("<circle class=\"pt\" cx=\"75\""), "{m}");
        // No interval drawn for a missing or undefined one.
        assert!(!dot_ci(&s, 0.25, None, "t")
            .into_string()
            .contains("class=\"ci\""));
        assert!(!dot_ci(&s, f64::NAN, Some([f64::NAN, 1.0]), "t")
            .into_string()
            .contains("circle"));
        let t = two_sided(
            &[TermRow {
                a: Some(("<b>", 3.0)),
                b: None,
            }],
            "A",
            "B",
        )
        .into_string();
        assert!(t.contains("&lt;b&gt;") && !t.contains("<b>"), "{t}");
    }
}
