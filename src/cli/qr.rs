//! QR codes drawn in the terminal with UTF-8 half blocks: one character cell holds two
//! modules (upper and lower), in explicit black on white so the code scans on dark and light
//! terminal themes alike.

use qrcode::{Color, EcLevel, QrCode};

use super::Error;

/// The quiet zone around the code, in modules (ISO/IEC 18004 asks for 4).
const QUIET: usize = 4;

/// Black text on a bright white background, then back to normal.
const START: &str = "\x1b[30;107m";
const END: &str = "\x1b[0m";

/// Renders `data` (an `otpauth://` URI) as terminal lines.
pub(crate) fn render(data: &str) -> Result<String, Error> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| Error::failed(format!("cannot make a QR code: {e}")))?;
    let width = code.width();
    let colors = code.to_colors();
    Ok(half_blocks(width, |x, y| {
        y.checked_mul(width)
            .and_then(|i| i.checked_add(x))
            .and_then(|i| colors.get(i))
            == Some(&Color::Dark)
    }))
}

/// Draws a `width`×`width` module matrix (`dark(x, y)`) with a quiet zone, two module rows
/// per text line: `█` both dark, `▀` upper dark, `▄` lower dark, space both light.
pub(crate) fn half_blocks(width: usize, dark: impl Fn(usize, usize) -> bool) -> String {
    let total = width.saturating_add(2 * QUIET);
    let at = |x: usize, y: usize| -> bool {
        x >= QUIET
            && y >= QUIET
            && x < QUIET + width
            && y < QUIET + width
            && dark(x - QUIET, y - QUIET)
    };
    let mut out = String::with_capacity(total.saturating_mul(total).saturating_mul(2));
    let mut y = 0;
    while y < total {
        out.push_str(START);
        for x in 0..total {
            let upper = at(x, y);
            let lower = y + 1 < total && at(x, y + 1);
            out.push(match (upper, lower) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push_str(END);
        out.push('\n');
        y += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        s.replace(START, "").replace(END, "")
    }

    #[test]
    fn two_module_rows_share_one_line() {
        // A 2x2 matrix: top-left and bottom-right dark.
        let s = strip(&half_blocks(2, |x, y| x == y));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| l.chars().count() == 10));
        assert_eq!(lines[2], "    ▀▄    ");
        assert_eq!(lines[0].trim(), "");
    }

    #[test]
    fn a_uri_renders_to_a_square_block() {
        let s = strip(&render("otpauth://totp/h:u@h?secret=JBSWY3DPEHPK3PXP").unwrap());
        let first = s.lines().next().unwrap().chars().count();
        assert!(first >= 21 + 8);
        assert_eq!(s.lines().count(), first.div_ceil(2));
    }
}
