//! Rendering a phrase as a transparent PNG.
//!
//! The text is set in Old Standard (the site's typeface, bundled under the SIL Open Font
//! Licence) at 72 px to the em, in the site's light blue, on a transparent background. Lines
//! wrap between words at [`MAX_LINE_WIDTH`] and are centred; the image is cropped to the inked
//! pixels plus [`MARGIN`]. Rendering is a pure function of the text: the same text always
//! gives the same bytes.
//!
//! Glyph coverage becomes the alpha channel with the colour left as is. (imageproc's
//! `draw_text_mut` blends the colour towards the background instead, which darkens the
//! anti-aliased edges of text on a transparent image, so it is not used here.)

use ab_glyph::{Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont, point};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, Rgba, RgbaImage};

/// The bundled font: Old Standard Regular, from Debian's `fonts-oldstandard`.
pub static OLD_STANDARD: &[u8] = include_bytes!("../fonts/OldStandard-Regular.ttf");

/// Size of the em, in pixels.
pub const EM_PX: f32 = 72.0;

/// The text colour, rgb(185, 235, 254).
pub const COLOUR: [u8; 3] = [185, 235, 254];

/// Widest a line may get before the next word goes to a new line, in pixels.
pub const MAX_LINE_WIDTH: f32 = 1200.0;

/// Transparent border around the inked pixels, in pixels.
pub const MARGIN: u32 = 8;

/// Why a text could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Nothing visible to draw.
    #[error("the text has no visible glyph")]
    Blank,
    /// The PNG encoder failed.
    #[error("encoding the PNG: {0}")]
    Encode(#[from] image::ImageError),
}

/// Renders texts in one font; cheap to share between threads.
pub struct Renderer {
    font: FontRef<'static>,
    scale: PxScale,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer in the bundled font.
    pub fn new() -> Self {
        let font = FontRef::try_from_slice(OLD_STANDARD).expect("the bundled font parses");
        // ab_glyph scales by line height; the em is what "72 px" means in CSS and in PIL.
        let units_per_em = font.units_per_em().unwrap_or(1000.0);
        let scale = PxScale::from(EM_PX * font.height_unscaled() / units_per_em);
        Self { font, scale }
    }

    /// The PNG of `text`.
    pub fn render(&self, text: &str) -> Result<Vec<u8>, RenderError> {
        let image = self.draw(text)?;
        let mut png = Vec::with_capacity(image.as_raw().len() / 8);
        PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgba8,
            )?;
        Ok(png)
    }

    /// The image of `text`, before encoding.
    pub fn draw(&self, text: &str) -> Result<RgbaImage, RenderError> {
        let glyphs = self.layout(text);
        let (mut min_x, mut min_y, mut max_x, mut max_y) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for glyph in &glyphs {
            let bounds = glyph.px_bounds();
            min_x = min_x.min(bounds.min.x);
            min_y = min_y.min(bounds.min.y);
            max_x = max_x.max(bounds.max.x);
            max_y = max_y.max(bounds.max.y);
        }
        if glyphs.is_empty() || max_x <= min_x || max_y <= min_y {
            return Err(RenderError::Blank);
        }
        // Bounds are whole pixels (ab_glyph rounds them out); the casts are exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (width, height) = (
            (max_x - min_x) as u32 + 2 * MARGIN,
            (max_y - min_y) as u32 + 2 * MARGIN,
        );
        let mut image = RgbaImage::new(width, height);
        let [red, green, blue] = COLOUR;
        for glyph in &glyphs {
            let bounds = glyph.px_bounds();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (left, top) = (
                (bounds.min.x - min_x) as u32 + MARGIN,
                (bounds.min.y - min_y) as u32 + MARGIN,
            );
            glyph.draw(|x, y, coverage| {
                let (x, y) = (left + x, top + y);
                if x < width && y < height {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let alpha = (coverage.clamp(0.0, 1.0) * 255.0).round() as u8;
                    let pixel = image.get_pixel_mut(x, y);
                    // Where glyphs overlap, the stronger coverage wins.
                    *pixel = Rgba([red, green, blue, pixel.0[3].max(alpha)]);
                }
            });
        }
        Ok(image)
    }

    /// Places every glyph: words fill lines up to [`MAX_LINE_WIDTH`], lines are centred.
    fn layout(&self, text: &str) -> Vec<OutlinedGlyph> {
        let font = self.font.as_scaled(self.scale);
        let space = font.h_advance(font.glyph_id(' '));
        let words: Vec<(&str, f32)> = text
            .split_whitespace()
            .map(|word| (word, self.width(word)))
            .collect();
        let mut lines: Vec<(Vec<&str>, f32)> = Vec::new();
        for (word, width) in words {
            match lines.last_mut() {
                Some((line, line_width)) if *line_width + space + width <= MAX_LINE_WIDTH => {
                    line.push(word);
                    *line_width += space + width;
                }
                _ => lines.push((vec![word], width)),
            }
        }
        let line_height = font.height() + font.line_gap();
        let mut glyphs = Vec::new();
        let mut baseline = font.ascent();
        for (line, line_width) in lines {
            let mut x = (MAX_LINE_WIDTH - line_width).max(0.0) / 2.0;
            let mut previous: Option<GlyphId> = None;
            for (n, word) in line.iter().enumerate() {
                if n > 0 {
                    x += space;
                    previous = None;
                }
                for c in word.chars() {
                    let id = font.glyph_id(c);
                    if let Some(previous) = previous {
                        x += font.kern(previous, id);
                    }
                    let glyph = id.with_scale_and_position(self.scale, point(x, baseline));
                    if let Some(outlined) = self.font.outline_glyph(glyph) {
                        glyphs.push(outlined);
                    }
                    x += font.h_advance(id);
                    previous = Some(id);
                }
            }
            baseline += line_height;
        }
        glyphs
    }

    /// Advance width of a word, kerning included.
    fn width(&self, word: &str) -> f32 {
        let font = self.font.as_scaled(self.scale);
        let mut width = 0.0;
        let mut previous: Option<GlyphId> = None;
        for c in word.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                width += font.kern(previous, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> RgbaImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .unwrap()
            .into_rgba8()
    }

    #[test]
    fn a_word_is_light_blue_ink_on_transparency_cropped_to_a_margin() {
        let renderer = Renderer::new();
        let image = decode(&renderer.render("Фигосипед").unwrap());
        // One line of 72 px type: taller than the capitals, far narrower than a line.
        assert!((60..140).contains(&image.height()), "{}", image.height());
        assert!((250..600).contains(&image.width()), "{}", image.width());
        let inked: Vec<_> = image
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[3] > 0)
            .collect();
        assert!(inked.len() > 1000);
        assert!(inked.iter().all(|(_, _, p)| p.0[..3] == COLOUR));
        assert!(image.pixels().any(|p| p.0[3] == 255), "solid strokes");
        // The margin is transparent and the ink touches it on every side.
        let (w, h) = image.dimensions();
        let inside =
            |x: u32, y: u32| (MARGIN..w - MARGIN).contains(&x) && (MARGIN..h - MARGIN).contains(&y);
        assert!(inked.iter().all(|(x, y, _)| inside(*x, *y)));
        assert!(inked.iter().any(|(x, _, _)| *x == MARGIN));
        assert!(inked.iter().any(|(_, y, _)| *y == MARGIN));
        assert!(inked.iter().any(|(x, _, _)| *x == w - MARGIN - 1));
        assert!(inked.iter().any(|(_, y, _)| *y == h - MARGIN - 1));
    }

    #[test]
    fn the_same_text_gives_the_same_bytes() {
        let renderer = Renderer::new();
        assert_eq!(
            renderer.render("Фигачечная схема").unwrap(),
            Renderer::new().render("Фигачечная схема").unwrap()
        );
    }

    #[test]
    fn long_phrases_wrap_to_the_maximum_width() {
        let renderer = Renderer::new();
        let one = decode(&renderer.render("Фигосипед").unwrap());
        let long = decode(&renderer.render(&["Фигосипед"; 12].join(" ")).unwrap());
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let max = MAX_LINE_WIDTH as u32 + 2 * MARGIN;
        assert!(long.width() <= max, "{}", long.width());
        assert!(long.height() >= 3 * one.height(), "{}", long.height());
    }

    #[test]
    fn every_russian_letter_has_a_glyph() {
        let font = FontRef::try_from_slice(OLD_STANDARD).unwrap();
        for c in ('а'..='я')
            .chain('А'..='Я')
            .chain(['ё', 'Ё', '«', '»', '—', '…'])
        {
            assert_ne!(font.glyph_id(c).0, 0, "{c}");
        }
    }
}
